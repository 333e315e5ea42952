from django.db import models


class LateReport(models.Model):
    """A table that exists only after this app's migration runs."""

    title = models.CharField(max_length=100)
    value = models.IntegerField(default=0)

    class Meta:
        db_table = 'core"."metabase_late_report'

    def __str__(self) -> str:
        return self.title
