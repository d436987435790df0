"""The status baseline: a bare Sanic HTTPS app, run as its own process.

It serves ``GET /jobs/<id>/status`` with the very JSON body a worker status
reply had, over the same certificate and the same TLS settings as worker's
API (``worker.api.tls.server_context``), in one process like worker's API;
no authentication, no executor. ``python -m bench.sanic_baseline --port N
--body FILE`` prints ``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bench import CERT, KEY
from worker.api.tls import server_context


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    body: dict[str, Any] = json.loads(args.body.read_text())
    app: Sanic[Any, Any] = Sanic("baseline", configure_logging=False, env_prefix=None)
    app.config.KEEP_ALIVE_TIMEOUT = 30

    async def status(_request: Request, raw_id: str) -> HTTPResponse:
        return json_response(body)

    app.add_route(status, "/jobs/<raw_id>/status", methods=["GET"])

    @app.after_server_start
    async def announce(_app: Any) -> None:
        print("ready", flush=True)

    app.run(
        host="127.0.0.1",
        port=args.port,
        ssl=server_context(CERT, KEY),
        single_process=True,
        access_log=False,
        motd=False,
    )


if __name__ == "__main__":
    main()
