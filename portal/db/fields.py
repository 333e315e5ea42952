"""Field factories shared by the apps' models.

The gateway writes several of these tables directly, not through Django, so keys and
timestamps also get database defaults (``db_default``): an INSERT that omits them
still produces a valid row.
"""

import uuid

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class GenRandomUUID(models.Func):
    function = "gen_random_uuid"
    output_field = models.UUIDField()


def uuid_pk(**kwargs) -> models.UUIDField:
    return models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=GenRandomUUID(), editable=False, **kwargs
    )


def created_at(**kwargs) -> models.DateTimeField:
    kwargs.setdefault("verbose_name", _("created at"))
    return models.DateTimeField(auto_now_add=True, db_default=Now(), **kwargs)


def updated_at(**kwargs) -> models.DateTimeField:
    kwargs.setdefault("verbose_name", _("updated at"))
    return models.DateTimeField(auto_now=True, db_default=Now(), **kwargs)
