"""The queue's free-text search looks in one column (``Finding.search_text``: rule id, title and package, computed by
the database) through one trigram index, instead of three trigram indexes (0002_postgresql) every write maintains.

The index is PostgreSQL-only SQL (the ORM has no expression GIN index with an operator class): on UPPER(search_text),
which is what ``icontains`` compiles to.  Where pg_trgm could not be created (0002 says when), the search works
without it.  A no-op on SQLite, where the column is searched with ``icontains`` as it is.
"""

import django.db.models.functions.text
from django.db import migrations, models

OLD_COLUMNS = ("rule_id", "title", "package_name")


def _has_trigrams(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def one_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in OLD_COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "finding_{column}_trgm_idx"')
    if _has_trigrams(schema_editor):
        schema_editor.execute(
            'CREATE INDEX IF NOT EXISTS "finding_search_trgm_idx" ON "dashboard_finding" USING gin ((UPPER("search_text")) gin_trgm_ops)'
        )


def three_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute('DROP INDEX IF EXISTS "finding_search_trgm_idx"')
    if _has_trigrams(schema_editor):
        for column in OLD_COLUMNS:
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "finding_{column}_trgm_idx" ON "dashboard_finding" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0004_events_first_report"),
    ]

    operations = [
        migrations.AddField(
            model_name="finding",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Concat(
                    "rule_id", models.Value("\n"), "title", models.Value("\n"), "package_name"
                ),
                output_field=models.TextField(),
            ),
        ),
        migrations.RunPython(one_search_index, three_search_indexes),
    ]
