"""Indexes for the retention of event reports (services/retention.py): the event reports by age, walked oldest
first without touching scan reports, and the few gate decisions that name a report, so deleting reports does not
scan every decision to let go of them."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_postgresql"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="gatedecision",
            index=models.Index(condition=models.Q(("report__isnull", False)), fields=["report"], name="gatedecision_report_idx"),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(
                condition=models.Q(("format__in", ["admission-review", "falco"])), fields=["received_at", "id"], name="report_event_received_idx"
            ),
        ),
    ]
