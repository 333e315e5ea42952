"""Fill every table with linked demo data; ``--scale N`` adds bulk agent history."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.selectors import fold_all_status_changes
from demo.guard import refuse_in_production
from demo.results import ProgressCallback, SeedError
from demo.scale import DEFAULT_BATCH_SIZE, default_workers, scale_up
from demo.seed import PASSWORD_ENV, seed_base

# Far beyond any demo; series numbers (and the ids derived from them) stay small.
MAX_SCALE = 1_000_000_000


def parse_count(option: str, value: Any) -> int:
    """A positive whole number from the command line or ``call_command``."""
    if isinstance(value, bool):
        raise CommandError(f"{option} must be a positive whole number, not {value!r}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace("_", "")
        if not text.isdigit():
            raise CommandError(f"{option} must be a positive whole number, not {value!r}")
        number = int(text)
    if number < 1:
        raise CommandError(f"{option} must be a positive whole number, not {value!r}")
    if number > MAX_SCALE:
        raise CommandError(f"{option} may be at most {MAX_SCALE:,}, not {number:,}")
    return number


class Command(BaseCommand):
    help = (
        "Fill every table with realistic, linked demo data (idempotent: a second run adds "
        "nothing). With --scale N, also top core.execution_history up to N rows with "
        "set-based inserts (sessions N/10, sandbox runs N/50, tool cache N/100)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Strings, validated in handle(), so bad values give a one-line CommandError.
        parser.add_argument(
            "--scale",
            metavar="N",
            help="Number of execution_history rows to reach (existing rows count).",
        )
        parser.add_argument(
            "--sessions",
            metavar="M",
            help="Number of bulk sessions for --scale (default N/10).",
        )
        parser.add_argument(
            "--batch-size",
            metavar="ROWS",
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per INSERT in --scale mode (default {DEFAULT_BATCH_SIZE:,}).",
        )
        parser.add_argument(
            "--jobs",
            metavar="J",
            default=default_workers(),
            help="Parallel insert streams for execution history in --scale mode "
            f"(default {default_workers()}: one per core, at most four).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo")
        scale = options["scale"]
        scale = None if scale is None else parse_count("--scale", scale)
        sessions = options["sessions"]
        if sessions is not None:
            if scale is None:
                raise CommandError("--sessions only applies together with --scale")
            sessions = parse_count("--sessions", sessions)
            if sessions > scale:
                raise CommandError(f"--sessions ({sessions:,}) may not exceed --scale ({scale:,})")
        batch_size = parse_count("--batch-size", options["batch_size"])
        jobs = parse_count("--jobs", options["jobs"])
        if jobs > 32:
            raise CommandError(f"--jobs must be at most 32 (got {jobs:,})")

        started = time.perf_counter()
        try:
            report = seed_base()
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("Base demo data:")
        for result in report.tables:
            text = "already seeded" if result.already_done else f"created {result.created:,}"
            self._line(result.table, text)
        if report.generated_password:
            self.stdout.write(
                f"Staff demo users {', '.join(report.staff_emails)}: password (shown once) "
                f"{report.generated_password}  (set {PASSWORD_ENV} to choose it)"
            )

        if scale is not None:
            self.stdout.write(f"Scaling agent history to {scale:,} executions:")
            try:
                results = scale_up(
                    executions=scale,
                    sessions=sessions,
                    batch_size=batch_size,
                    progress=self._progress(),
                    workers=jobs,
                )
            except SeedError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                self._close_bars()
            for result in results:
                if result.created:
                    text = f"added {result.created:,} (now {result.total:,})"
                else:
                    text = f"already at {result.total:,} rows"
                self._line(result.table, text)
        # Every new session appended a change to the session rollup (a million of them
        # at --scale): folded here, not by the first dashboard views.
        fold_all_status_changes()
        self.stdout.write(self.style.SUCCESS(f"Done in {time.perf_counter() - started:.1f} s."))

    def _line(self, table: str, text: str) -> None:
        self.stdout.write(f"  {table:<34} {text}")

    def _progress(self) -> ProgressCallback:
        """A tqdm bar per table on a terminal, else one line per batch."""
        interactive = sys.stderr.isatty()
        self._bars: dict[str, tqdm] = {}
        self._clock = time.perf_counter()

        def report(table: str, done: int, total: int) -> None:
            if interactive:
                bar = self._bars.get(table)
                if bar is None:
                    bar = self._bars[table] = tqdm(
                        total=total, desc=table, unit="rows", unit_scale=True, file=sys.stderr
                    )
                bar.update(done - bar.n)
                return
            elapsed = time.perf_counter() - self._clock
            self.stdout.write(f"  {table}: {done:,}/{total:,} rows ({elapsed:.1f} s)")

        return report

    def _close_bars(self) -> None:
        for bar in getattr(self, "_bars", {}).values():
            bar.close()
