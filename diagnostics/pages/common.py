"""What every diagnostics page starts from: the database and the server's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnostics.queries import server
from diagnostics.queries.server import ServerInfo


@dataclass
class Page:
    """What every page gets: the database, the server facts, and its own panels."""

    alias: str
    info: ServerInfo | None
    info_error: str | None
    panels: dict[str, Any] = field(default_factory=dict)


def base(alias: str) -> Page:
    result = server.server_info(alias)
    return Page(alias=alias, info=result.first(), info_error=result.error)
