"""Blocking page: who waits for whom, as a tree of lock waits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from diagnostics.pages.common import Page
from diagnostics.queries import blocking


@dataclass(frozen=True)
class TreeRow:
    session: blocking.LockSession
    depth: int
    is_root: bool
    blocked_count: int  # sessions waiting behind it, directly or not
    repeated: bool  # already shown under another blocker


def blocking_tree(rows: tuple[blocking.LockSession, ...]) -> list[TreeRow]:
    """Roots (blocking others, waiting for nobody) first, most blocked sessions first.

    A session queued behind several others appears under each of them; its subtree is
    shown once. Cycles (a deadlock before the detector resolves it) have no root, so
    their oldest member is shown as one.
    """
    by_pid = {r.pid: r for r in rows}
    children: dict[int, list[int]] = {pid: [] for pid in by_pid}
    for r in rows:
        for blocker in r.blocked_by:
            if blocker in children:
                children[blocker].append(r.pid)

    def reach(pid: int) -> set[int]:
        seen: set[int] = set()
        stack = list(children.get(pid, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(children.get(current, ()))
        return seen

    reached = {pid: reach(pid) for pid in by_pid}
    roots = [pid for pid, r in by_pid.items() if not r.blocked_by and children[pid]]
    covered = set().union(*(reached[p] for p in roots), set(roots)) if roots else set()
    leftovers = [pid for pid in by_pid if pid not in covered and children[pid]]
    if leftovers:  # a cycle: pick its oldest member as the root
        oldest = min(
            leftovers,
            key=lambda p: (
                by_pid[p].xact_start is None,
                by_pid[p].xact_start or dt.datetime.max,
                p,
            ),
        )
        roots.append(oldest)

    def age(pid: int) -> float:
        return by_pid[pid].xact_seconds or 0.0

    roots.sort(key=lambda p: (-len(reached[p]), -age(p), p))
    out: list[TreeRow] = []
    shown: set[int] = set()

    def walk(pid: int, depth: int) -> None:
        repeated = pid in shown
        out.append(TreeRow(by_pid[pid], min(depth, 6), depth == 0, len(reached[pid]), repeated))
        if repeated:
            return
        shown.add(pid)
        for child in sorted(children[pid], key=lambda p: (-len(reached[p]), p)):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


def build(page: Page, params: Mapping[str, str]) -> None:
    if page.info is None:
        return
    result = blocking.blocking(page.alias, server_major=page.info.major)
    page.panels.update(
        blocking=result,
        tree=blocking_tree(result.rows) if result.ok else [],
    )
