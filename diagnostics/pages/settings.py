"""Settings page: key server settings next to the values this project recommends."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext

from diagnostics import checks, recommendations
from diagnostics.pages.common import Page
from diagnostics.queries import settings as settings_queries

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


@dataclass(frozen=True)
class SettingRow:
    name: str
    actual: str
    source: str | None
    where: str | None
    recommended: str | _StrPromise | None
    ok: bool | None
    why: str | _StrPromise | None
    fix_sql: str | None
    fix_cloud_sql: str | None
    restart: bool
    pending_restart: bool
    hidden: bool


def build(page: Page, params: Mapping[str, str]) -> None:
    if page.info is None:
        return
    result = settings_queries.settings_named(page.alias, list(recommendations.KEY_SETTINGS))
    by_name = {s.name: s for s in result}
    # The page's own statement sets these two locally: show the session's own values.
    for own in ("statement_timeout", "lock_timeout"):
        if own in by_name:
            by_name[own] = dataclasses.replace(
                by_name[own], setting=by_name[own].reset_val, source=gettext("session default")
            )
    rows = []
    for name in recommendations.KEY_SETTINGS:
        rec = next((r for r in recommendations.RECOMMENDATIONS if r.name == name), None)
        s = by_name.get(name)
        if s is None:
            rows.append(
                SettingRow(
                    name,
                    gettext("hidden or not available"),
                    None,
                    None,
                    rec.recommended if rec else None,
                    None,
                    rec.why if rec else None,
                    None,
                    None,
                    False,
                    False,
                    True,
                )
            )
            continue
        ok = rec.check(s) if rec and rec.check else None
        fix_sql = fix_cloud = None
        if rec and ok is False and rec.value:
            fix_sql = f"ALTER SYSTEM SET {checks.ident(name)} = '{rec.value}';" + (
                "" if s.context == "postmaster" else "\nSELECT pg_reload_conf();"
            )
            flag = (
                "cloudsql.enable_pg_stat_statements=on"
                if name == "shared_preload_libraries"
                else f"{name}={rec.value}"
            )
            fix_cloud = f"gcloud sql instances patch INSTANCE --database-flags={flag}"
        where = f"{s.sourcefile}:{s.sourceline}" if s.sourcefile else None
        rows.append(
            SettingRow(
                name,
                recommendations.display(s),
                s.source,
                where,
                rec.recommended if rec else None,
                ok,
                rec.why if rec else s.short_desc,
                fix_sql,
                fix_cloud,
                s.context == "postmaster",
                s.pending_restart,
                False,
            )
        )
    page.panels.update(
        settings=result,
        recommended=[r for r in rows if r.recommended],
        other=[r for r in rows if not r.recommended],
        hidden=[r.name for r in rows if r.hidden],
        cloud_sql_note=checks.CLOUD_SQL_FLAGS_NOTE,
    )
