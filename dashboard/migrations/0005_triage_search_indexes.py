# Triage queue: an index for the home page's recent admission denials and runtime alerts, and,
# on PostgreSQL, trigram indexes so the queue's free-text search (icontains on rule id, title, package)
# does not read every finding.  pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may
# create it; where that is refused, the search still works, without the indexes.

import logging

from django.db import migrations, models, transaction

logger = logging.getLogger(__name__)

COLUMNS = ("rule_id", "title", "package_name")


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # noqa: BLE001 - no permission: search works without the indexes
        logger.warning("could not create the pg_trgm extension: the findings search will not use trigram indexes")
        return
    for column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "finding_{column}_trgm_idx" ON "dashboard_finding" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "finding_{column}_trgm_idx"')


class Migration(migrations.Migration):

    dependencies = [
        ("dashboard", "0004_triage_severity_rank"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(fields=["team", "stream", "-last_seen"], name="finding_team_stream_seen_idx"),
        ),
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(condition=models.Q(("kev", True)), fields=["team", "-risk_score", "id"], name="finding_team_kev_idx"),
        ),
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(fields=["team", "-epss"], name="finding_team_epss_idx"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
