"""Privileges page: what the connecting role lacks, and the statements that grant it."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostics import checks
from diagnostics.pages.common import Page
from diagnostics.queries import settings as settings_queries


def build(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    result = settings_queries.privileges(page.alias)
    p = result.first()
    found = (
        checks.privilege_checks(p, info, checks.statements_status(page.alias, info)) if p else []
    )
    page.panels.update(
        privileges=result,
        checks=found,
        # The statements to run in the database (server settings are instance flags).
        grants=[
            f.command
            for c in found
            for f in c.fixes
            if f.command.startswith(("GRANT", "CREATE", "ALTER EXTENSION"))
        ],
    )
