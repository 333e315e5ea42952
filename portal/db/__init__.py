"""PostgreSQL backend for tables that live in named schemas.

Models in this project name their tables ``'schema"."table'`` (Django has no schema
option: ticket #6148). The stock backend creates such tables correctly, but its
introspection only sees relations on ``search_path`` and several schema-editor
statements name indexes and constraints without their schema. This package
subclasses ``django.db.backends.postgresql`` and corrects exactly those places;
each override says which behaviour it corrects. ``tests/test_migration_chain.py``
guards it across Django upgrades.
"""
