"""Database diagnostics in the admin: pages over PostgreSQL's statistics views.

Layout: ``queries/`` holds every SQL statement (named constants, frozen row
dataclasses, one typed function each), ``runner`` runs them safely, ``pages/``
assembles what each page shows (one module per page, listed in its ``__init__``),
``views``/``urls`` mount the pages on the admin site, ``actions`` signals backends and
resets statistics (audited), ``charts`` turns history into server-rendered SVG,
``snapshots`` and ``manage.py snapshot_stats`` record the history in the models.
"""
