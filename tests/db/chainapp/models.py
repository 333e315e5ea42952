"""The final state of the migration chain in ``migrations/``."""

from django.conf import settings
from django.db import models


class Parent(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        db_table = 'chain_a"."parent'


class Thing(models.Model):
    name = models.CharField(max_length=50)
    code = models.CharField(max_length=20)
    qty = models.IntegerField(default=0)
    flag = models.BooleanField(default=False)
    remark = models.CharField(max_length=100, null=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)

    class Meta:
        db_table = 'chain_b"."thing'
