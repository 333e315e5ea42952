"""``make bench``: what the portal's changelist rows tag saves per page.

Run as ``python -m tests.bench.render``. On the admin bench's database (``portal_bench``,
made by ``tests.bench.admin``; the same ``BENCH_DB`` and ``--scale`` rules), every page is
requested in alternating rounds in two ways:

- **portal**: as shipped;
- **stock rows**: the changelist rendered by Django's own ``{% result_list %}`` instead
  of ``{% portal_result_list %}`` (``portal/templatetags/portal_rows.py``).

The variant is a template override placed before the apps' templates, so nothing else
changes. The saving is the stock variant's median minus the portal's, per page, also as
a share of the stock page (the share does not depend on how loaded the machine is; the
milliseconds do). It writes the table into docs/benchmarks.md between
``<!-- bench:render:start -->`` and ``<!-- bench:render:end -->``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import admin as admin_bench
from tests.bench.doc import write_block

START, END = "<!-- bench:render:start -->", "<!-- bench:render:end -->"
ROUNDS = int(os.environ.get("BENCH_RENDER_ROUNDS", 40))
PORTAL_TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates" / "admin"
VARIANTS = ("portal", "stock rows")


@dataclass
class Page:
    name: str
    url: str
    ms: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VARIANTS})

    def median(self, variant: str) -> float:
        return statistics.median(self.ms[variant])


def stock_templates(root: Path) -> dict[str, Path]:
    """A template directory that puts Django's own row rendering back."""
    rows = root / "rows" / "admin" / "portal"
    rows.mkdir(parents=True)
    change_list = (PORTAL_TEMPLATES / "portal" / "change_list.html").read_text()
    assert "{% portal_result_list cl %}" in change_list, "the changelist template changed"
    (rows / "change_list.html").write_text(
        change_list.replace("{% portal_result_list cl %}", "{% result_list cl %}")
    )
    return {"stock rows": root / "rows"}


def pages() -> list[Page]:
    return [
        Page("Execution history, page 1", "/admin/core/executionhistory/"),
        Page("Agent sessions, page 1", "/admin/core/codexsession/"),
        Page("Sandbox runs, page 1", "/admin/core/sandboxexecution/"),
        Page("Activity log, page 1", "/admin/audit/activitylog/"),
        Page("Users, page 1", "/admin/accounts/user/"),
    ]


def measure(client, found: list[Page], dirs: dict[str, Path]) -> None:
    from django.conf import settings
    from django.test.utils import override_settings

    def templates_with(extra: Path | None) -> list[dict[str, Any]]:
        engine: dict[str, Any] = {**settings.TEMPLATES[0]}
        if extra is not None:
            engine["DIRS"] = [extra, *list(engine.get("DIRS") or [])]
        return [engine]

    overrides = {"portal": None, **dirs}
    for _ in range(ROUNDS):
        for variant, extra in overrides.items():
            # Changing TEMPLATES builds a new template engine: each variant's first
            # request of a round compiles the templates again, so it is not counted.
            with override_settings(TEMPLATES=templates_with(extra)):
                for page in found:
                    admin_bench._get(client, page.url)
                for page in found:
                    page.ms[variant].append(admin_bench._get(client, page.url))


def table(found: list[Page], data: admin_bench.Data, machine: str) -> str:
    lines = [
        f"Medians of {ROUNDS} alternating rounds on {data.executions:,} executions and "
        f"{data.sessions:,} sessions; {machine}. Saving = the stock page's median minus "
        "the portal's; share = the saving over the stock page's median.",
        "",
        "| Page | Portal | Stock rows | Rows tag saves | Share |",
        "|---|---:|---:|---:|---:|",
    ]
    for page in found:
        portal = page.median("portal")
        rows = page.median("stock rows")
        lines.append(
            f"| {page.name} | {portal:.1f} ms | {rows:.1f} ms | {rows - portal:+.1f} ms "
            f"| {(rows - portal) / rows:+.0%} |"
        )
    lists = [p for p in found if "page 1" in p.name]
    saving = statistics.median(p.median("stock rows") - p.median("portal") for p in lists)
    share = statistics.median(
        (p.median("stock rows") - p.median("portal")) / p.median("stock rows") for p in lists
    )
    lines += [
        "",
        f"Median saving per list page: **{saving:.1f} ms** ({share:.0%} of the stock page).",
    ]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    write_block(START, END, text, "### What the rendering tags save")


def main(argv: list[str] | None = None) -> int:
    args = admin_bench.arguments(__doc__.splitlines()[0], argv)
    admin_bench.configure()
    from django.test import Client

    from accounts.models import User

    data = admin_bench.ensure_data(args.scale)
    user, _ = User.objects.get_or_create(
        email="bench@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    found = pages()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = stock_templates(Path(tmp))
        admin_bench.log(f"== measuring {len(found)} pages x {len(VARIANTS)} variants")
        measure(client, found, dirs)
    text = table(found, data, admin_bench.machine())
    print()
    print(text)
    if not args.no_write:
        write_doc(text)
        admin_bench.log(f"\n== written to {admin_bench.DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
