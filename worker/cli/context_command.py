"""`worker context ls` and `worker context use NAME`."""

from __future__ import annotations

import argparse

from worker.cli import contexts, render
from worker.cli.environment import Environment, config_path
from worker.cli.exit_status import ExitStatus


def context_command(args: argparse.Namespace, env: Environment) -> int:
    if args.context_action == "use":
        path = contexts.use(env.environ, args.name)
        if not args.json:
            env.stdout.write(f"Current context: {args.name} (in {path})\n")
        return ExitStatus.SUCCESS
    file = contexts.load(env.environ)
    found = file.contexts if file else {}
    current = env.environ.get("WORKER_CONTEXT") or (file.current if file else None)
    if args.json:
        rows = [
            {
                "name": c.name,
                "current": c.name == current,
                "url": c.url,
                "ca": c.ca,
                "user": c.user,
                "password": c.password_source,
            }
            for c in found.values()
        ]
        render.print_json(env, {"contexts": rows, "file": config_path(env.environ)})
        return ExitStatus.SUCCESS
    if not found:
        where = config_path(env.environ)
        env.stdout.write(f"no contexts (the client config would be {where})\n")
        return ExitStatus.SUCCESS
    width = max(len(name) for name in found)
    env.stdout.write(f"  {'NAME':<{width}}  URL  USER  PASSWORD\n")
    for name, context in found.items():
        mark = "*" if name == current else " "
        env.stdout.write(
            f"{mark} {name:<{width}}  {context.url or '-'}  {context.user or '-'}  "
            f"{context.password_source}\n"
        )
    return ExitStatus.SUCCESS
