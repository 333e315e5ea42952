"""What a seeding step reports, and the error it stops with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class TableResult:
    """What one step did to one table."""

    table: str
    created: int
    total: int | None = None

    @property
    def already_done(self) -> bool:
        return self.created == 0


# (table, rows done, rows to do), called after each committed batch of the bulk top-up.
ProgressCallback = Callable[[str, int, int], None]


class SeedError(Exception):
    """The database holds something the demo data cannot be linked with."""


def table_label(model: type[models.Model]) -> str:
    return model._meta.db_table.replace('"."', ".")
