"""Stopping what dead servers left in their cgroup trees.

A tree is swept only once its lock is ours, which proves that its executor
is gone (see cgroups.py); a live server's tree, in whatever PID namespace or
container, is never touched.
"""

from __future__ import annotations

import logging

from worker.executor import cgroups, hierarchies
from worker.executor.killer import kill_all
from worker.executor.targets import TreesTarget

log = logging.getLogger("worker.executor")


async def sweep_dead_trees(grace: float) -> int:
    """Kill and remove the trees of dead servers beside ours, in the v2
    hierarchy and in each v1 one we use; how many."""
    where = cgroups.home()
    homes = {where} if where is not None else set()
    homes.update(hierarchies.v1_homes().values())
    trees = [tree for home in sorted(homes) for tree in cgroups.dead_trees(home)]
    if not trees:
        return 0
    names = ", ".join(tree.base.name for tree in trees)
    try:
        target = TreesTarget(trees)
        if any(_populated(tree) for tree in trees):
            log.warning("stopping what dead servers left running in %s: %s", where, names)
        if not await kill_all(target, grace):
            log.error("some processes in %s could not be stopped", names)
    finally:
        for tree in trees:
            tree.remove()
    return len(trees)


def _populated(tree: cgroups.CgroupTree) -> bool:
    try:
        return tree.populated()
    except OSError:
        return True  # can't tell: say so
