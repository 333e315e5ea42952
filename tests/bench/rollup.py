"""``make bench``: what the session rollup's triggers cost the gateway's writes.

Run as ``python -m tests.bench.rollup``. On the admin bench's database (``portal_bench``,
made by ``tests.bench.admin``; the same ``BENCH_DB`` and ``--scale`` rules), as the
tables' owner, each round runs the gateway's kinds of single-row statement on
``core.codex_sessions``, each timed as a client sees it (one round trip):

- a new session (INSERT: the insert trigger appends one change);
- a status change (UPDATE of status: two changes);
- an update of anything else (metadata: the update trigger's WHEN clause lets nothing
  run);
- a session deleted (one change).

Rounds alternate between the triggers as shipped and the same round with the four
triggers disabled (``ALTER TABLE ... DISABLE TRIGGER`` inside the round's transaction),
so both see the same machine at the same moment. Every round is rolled back: the
database is left as it was. It writes the medians and their ratio into
docs/benchmarks.md between ``<!-- bench:rollup:start -->`` and ``<!-- bench:rollup:end -->``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from tests.bench import admin as admin_bench
from tests.bench.doc import write_block

START, END = "<!-- bench:rollup:start -->", "<!-- bench:rollup:end -->"
ROUNDS = int(os.environ.get("BENCH_ROLLUP_ROUNDS", 20))
PER_ROUND = 200
TRIGGERS = (
    "codex_sessions_count_insert",
    "codex_sessions_count_update",
    "codex_sessions_count_delete",
    "codex_sessions_count_truncate",
)
KINDS = ("new session", "status change", "other update", "session deleted")
VARIANTS = ("triggers", "no triggers")


def _round(cursor, with_triggers: bool, into: dict[str, list[float]]) -> None:
    """One round in one transaction, rolled back by the caller."""
    if not with_triggers:
        for name in TRIGGERS:
            cursor.execute(f'ALTER TABLE core.codex_sessions DISABLE TRIGGER "{name}"')
    ids = [uuid.uuid4() for _ in range(PER_ROUND)]

    def timed(kind: str, run: Callable[[uuid.UUID], None]) -> None:
        for pk in ids:
            started = time.perf_counter()
            run(pk)
            into[kind].append((time.perf_counter() - started) * 1e6)

    timed(
        "new session",
        lambda pk: cursor.execute(
            "INSERT INTO core.codex_sessions (session_id, user_id, model, status)"
            " VALUES (%s, 'usr_bench', 'gpt-5', 'active')",
            [pk],
        ),
    )
    timed(
        "status change",
        lambda pk: cursor.execute(
            "UPDATE core.codex_sessions SET status = 'completed' WHERE session_id = %s", [pk]
        ),
    )
    timed(
        "other update",
        lambda pk: cursor.execute(
            "UPDATE core.codex_sessions SET metadata = '{\"step\": 2}' WHERE session_id = %s",
            [pk],
        ),
    )
    timed(
        "session deleted",
        lambda pk: cursor.execute("DELETE FROM core.codex_sessions WHERE session_id = %s", [pk]),
    )


def measure() -> dict[str, dict[str, list[float]]]:
    from django.db import connection, transaction

    found: dict[str, dict[str, list[float]]] = {v: {k: [] for k in KINDS} for v in VARIANTS}
    for round_ in range(ROUNDS + 1):
        order = VARIANTS if round_ % 2 else tuple(reversed(VARIANTS))
        for variant in order:
            scratch: dict[str, list[float]] = {k: [] for k in KINDS}
            with transaction.atomic(), connection.cursor() as cursor:
                _round(cursor, variant == "triggers", scratch)
                transaction.set_rollback(True)
            if round_:  # the first round warms the caches; not counted
                for kind in KINDS:
                    found[variant][kind] += scratch[kind]
    return found


def table(found: dict[str, dict[str, list[float]]], data: admin_bench.Data, machine: str) -> str:
    lines = [
        f"Medians of {ROUNDS} alternating rounds of {PER_ROUND} statements of each kind "
        f"(one round trip each, as the tables' owner, each round rolled back) on "
        f"{data.sessions:,} sessions; {machine}.",
        "",
        "| statement | triggers | no triggers | difference | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        on = statistics.median(found["triggers"][kind])
        off = statistics.median(found["no triggers"][kind])
        lines.append(
            f"| {kind} | {on:.0f} µs | {off:.0f} µs | {on - off:+.0f} µs | {on / off:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = admin_bench.arguments(__doc__.splitlines()[0], argv)
    admin_bench.configure()
    data = admin_bench.ensure_data(args.scale)
    admin_bench.log(f"== measuring {ROUNDS} rounds x {len(VARIANTS)} variants")
    text = table(measure(), data, admin_bench.machine())
    print()
    print(text)
    if not args.no_write:
        write_block(START, END, text, "### What the session rollup costs the gateway's writes")
        admin_bench.log(f"\n== written to {admin_bench.DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
