"""The charts' data tables: each time in the reader's zone, format and language.

The table's times are cached per (time, format, zone, language); the independent
answer is Django's own ``date_format`` of the local time, computed here for each
combination in turn, so a cache that ignored one of them would show another's text.
"""

import datetime as dt
import zoneinfo

from django.utils import timezone, translation
from django.utils.formats import date_format

from diagnostics.charts import Series, line_chart

HOURS = [dt.datetime(2026, 11, 30, h, tzinfo=dt.UTC) for h in range(0, 24, 6)]


def _table_times(chart) -> list[str]:
    return [row[0] for row in chart.table[1:]]


def test_each_language_and_zone_gets_its_own_times():
    series = [Series("executions", tuple((h, float(i)) for i, h in enumerate(HOURS)))]
    seen = {}
    for language in ("en", "pt-br", "en"):
        for zone in ("UTC", "America/Sao_Paulo", "Asia/Tokyo", "UTC"):
            with translation.override(language), timezone.override(zoneinfo.ZoneInfo(zone)):
                chart = line_chart("t", series, str)
                expected = [
                    date_format(timezone.localtime(h), "SHORT_DATETIME_FORMAT") for h in HOURS
                ]
            assert _table_times(chart) == expected, (language, zone)
            seen[(language, zone)] = tuple(expected)
    # The combinations really differ, so the comparison above could catch a mix-up.
    assert len(set(seen.values())) == len(seen)
