"""Load clients in processes of their own, started together.

Each client process gets a spec, gets ready (connects), then meets the others
and the benchmark at a barrier; so the benchmark knows when every client is
ready (to start a job's output, say) and no client runs while another is
still connecting. The client never shares the server's interpreter or ours.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.synchronize import Barrier
from typing import Any, TypeVar

S = TypeVar("S")
R = TypeVar("R")

READY_TIMEOUT = 120.0


def _event_loop_run(main: Coroutine[Any, Any, R]) -> R:
    try:
        import uvloop
    except ImportError:  # plain asyncio is slower, not wrong
        return asyncio.run(main)
    return uvloop.run(main)


def _entry(
    target: Callable[[Any, Callable[[], Awaitable[None]]], Coroutine[Any, Any, Any]],
    spec: Any,
    barrier: Barrier,
    results: multiprocessing.Queue[tuple[str, Any]],
) -> None:
    async def ready() -> None:
        # Blocking, but nothing else is due on this loop before the start.
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait, READY_TIMEOUT)

    try:
        results.put(("ok", _event_loop_run(target(spec, ready))))
    except BaseException:
        barrier.abort()
        results.put(("error", traceback.format_exc()))


def run_clients(
    target: Callable[[S, Callable[[], Awaitable[None]]], Coroutine[Any, Any, R]],
    specs: list[S],
    on_ready: Callable[[], None] | None = None,
    timeout: float = 300.0,
) -> list[R]:
    """Run ``target(spec, ready)`` in one process per spec; ``target`` awaits
    ``ready()`` once it is set to go. ``on_ready`` runs here once all are."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(specs) + 1)
    results: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    processes = [
        context.Process(target=_entry, args=(target, spec, barrier, results), daemon=True)
        for spec in specs
    ]
    for process in processes:
        process.start()
    try:
        try:
            barrier.wait(READY_TIMEOUT)
        except Exception as exc:
            barrier.abort()
            try:
                _, value = results.get(timeout=5)
            except queue.Empty:
                raise RuntimeError("the load clients never got ready") from exc
            raise RuntimeError(f"a load client failed:\n{value}") from exc
        if on_ready is not None:
            on_ready()
        collected: list[R] = []
        for _ in processes:
            try:
                kind, value = results.get(timeout=timeout)
            except queue.Empty:
                raise RuntimeError("a load client did not finish in time") from None
            if kind != "ok":
                raise RuntimeError(f"a load client failed:\n{value}")
            collected.append(value)
        return collected
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()  # a client process we started
                process.join()
