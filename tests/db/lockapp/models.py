"""The final state of the lock-safe migrate fixtures in ``migrations/``."""

from django.db import models


class Alpha(models.Model):
    name = models.CharField(max_length=50)
    note = models.TextField(null=True)
    counter = models.IntegerField(default=0, db_default=0)
    beta = models.ForeignKey("Beta", null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = 'lockapp"."alpha'
        constraints = [
            models.CheckConstraint(
                condition=models.Q(counter__gte=0), name="alpha_counter_not_negative"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Beta(models.Model):
    name = models.CharField(max_length=50)
    note = models.TextField(null=True)
    alpha = models.ForeignKey(Alpha, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = 'lockapp"."beta'
        indexes = [models.Index(fields=["note"], name="beta_note_idx")]

    def __str__(self) -> str:
        return self.name
