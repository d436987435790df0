from __future__ import annotations

from worker.cli.main import main

if __name__ == "__main__":
    main()
