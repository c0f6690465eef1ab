"""Shift left's first-seen counts move from a JSON document per snapshot to one narrow row per (team, day, class, stream).

The shift-left page decoded one JSON column per team and day and summed it in Python; with rows, a period's
shares are one SQL aggregate.  The snapshots already taken are copied over before the column goes, so the page
shows the same history without a backfill.
"""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 5000


def copy_first_streams(apps, schema_editor):
    snapshots = apps.get_model("dashboard", "DailySnapshot")
    counts = apps.get_model("dashboard", "FirstSeenCount")
    rows = snapshots.objects.filter(team__isnull=False).exclude(first_streams={}).values_list("team_id", "date", "first_streams")
    batch = []
    for team_id, day, streams in rows.iterator(chunk_size=BATCH):
        for klass, by_stream in (streams or {}).items():
            batch.extend(counts(team_id=team_id, date=day, klass=klass, stream=stream, n=int(n)) for stream, n in by_stream.items() if n)
        if len(batch) >= BATCH:
            counts.objects.bulk_create(batch)
            batch = []
    counts.objects.bulk_create(batch)


def copy_back(apps, schema_editor):
    snapshots = apps.get_model("dashboard", "DailySnapshot")
    documents: dict = {}
    for team_id, day, klass, stream, n in apps.get_model("dashboard", "FirstSeenCount").objects.values_list("team_id", "date", "klass", "stream", "n"):
        documents.setdefault((team_id, day), {}).setdefault(klass, {})[stream] = n
    for (team_id, day), streams in documents.items():
        snapshots.objects.filter(team_id=team_id, date=day).update(first_streams=streams)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0005_events_search"),
    ]

    operations = [
        migrations.CreateModel(
            name="FirstSeenCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("date", models.DateField()),
                ("klass", models.CharField(max_length=64)),
                ("stream", models.CharField(max_length=16)),
                ("n", models.PositiveIntegerField()),
                (
                    "team",
                    models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="dashboard.team"),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("date", "team", "klass", "stream"), name="first_seen_count_unique")],
            },
        ),
        migrations.RunPython(copy_first_streams, copy_back),
        migrations.RemoveField(
            model_name="dailysnapshot",
            name="first_streams",
        ),
    ]
