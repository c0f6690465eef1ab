"""Everything Vigil asks of PostgreSQL beyond the ORM's schema, in one migration (a no-op on SQLite).

Each operation says why the ORM cannot express it.  Changing one means a new migration that replaces it here.
"""

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # params=None: the SQL is sent as is (with params, Django would read plpgsql's `%` as a placeholder).
            schema_editor.execute(sql, params=None)

    return run


# --- The audit log is append-only in the database too: UPDATE and DELETE of a row fail. ----------------------------
# TRUNCATE (test database flushes, an operator's deliberate purge) is not affected.  Django has no triggers.
AUDIT_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION vigil_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS vigil_audit_append_only ON dashboard_auditevent;
CREATE TRIGGER vigil_audit_append_only BEFORE UPDATE OR DELETE ON dashboard_auditevent
    FOR EACH ROW EXECUTE FUNCTION vigil_audit_append_only();
"""
AUDIT_DROP = """
DROP TRIGGER IF EXISTS vigil_audit_append_only ON dashboard_auditevent;
DROP FUNCTION IF EXISTS vigil_audit_append_only();
"""

# --- Trigram indexes for the queue's free-text search (icontains on rule id, title, package). -----------------------
# pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it; where that is refused, the search
# still works, without the indexes.  The indexes are on UPPER(column), which is what icontains compiles to.
TRIGRAM_COLUMNS = ("rule_id", "title", "package_name")


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # noqa: BLE001 - no permission: search works without the indexes
        logger.warning("could not create the pg_trgm extension: the findings search will not use trigram indexes")
        return
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "finding_{column}_trgm_idx" ON "dashboard_finding" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in TRIGRAM_COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "finding_{column}_trgm_idx"')


# --- Raw report payloads are compressed with lz4 instead of pglz. --------------------------------------------------
# About 3x faster to store and read back a 10 MB report, for 12 % more bytes on disk.  Skipped on a PostgreSQL built
# without lz4 (the setting only changes how new values are stored).  Django has no column compression option.
def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        if cursor.fetchone() is None:
            return
    schema_editor.execute("ALTER TABLE dashboard_reportpayload ALTER COLUMN data SET COMPRESSION lz4")


def use_default_compression(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE dashboard_reportpayload ALTER COLUMN data SET COMPRESSION DEFAULT")


# --- Active findings per team and severity, kept by PostgreSQL itself (models/posture.py ActiveFindingDelta). -------
# One trigger per statement kind, each adding the statement's net change per (team, severity), so the posture API
# sums a few hundred rows instead of counting the findings table per request, whatever path wrote the findings
# (ORM, COPY, UPDATE ... FROM VALUES).  The statuses are ACTIVE_STATUSES (a test compares the sums with a live
# count after every kind of write).
ACTIVE = "('open', 'triaged', 'in_progress')"
ACTIVE_COUNTS = f"""
CREATE OR REPLACE FUNCTION dashboard_active_finding_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_activefindingdelta (team_id, severity, n)
            SELECT team_id, severity, count(*) FROM new_rows WHERE status IN {ACTIVE} GROUP BY team_id, severity;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_activefindingdelta (team_id, severity, n)
            SELECT team_id, severity, -count(*) FROM old_rows WHERE status IN {ACTIVE} GROUP BY team_id, severity;
    ELSE
        INSERT INTO dashboard_activefindingdelta (team_id, severity, n)
            SELECT team_id, severity, sum(n) FROM (
                SELECT team_id, severity, 1 AS n FROM new_rows WHERE status IN {ACTIVE}
                UNION ALL
                SELECT team_id, severity, -1 FROM old_rows WHERE status IN {ACTIVE}
            ) AS changed GROUP BY team_id, severity HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER dashboard_finding_active_insert AFTER INSERT ON dashboard_finding
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_active_finding_delta();
CREATE TRIGGER dashboard_finding_active_update AFTER UPDATE ON dashboard_finding
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_active_finding_delta();
CREATE TRIGGER dashboard_finding_active_delete AFTER DELETE ON dashboard_finding
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_active_finding_delta();
INSERT INTO dashboard_activefindingdelta (team_id, severity, n)
    SELECT team_id, severity, count(*) FROM dashboard_finding WHERE status IN {ACTIVE} GROUP BY team_id, severity;
"""
ACTIVE_COUNTS_DROP = """
DROP TRIGGER dashboard_finding_active_insert ON dashboard_finding;
DROP TRIGGER dashboard_finding_active_update ON dashboard_finding;
DROP TRIGGER dashboard_finding_active_delete ON dashboard_finding;
DROP FUNCTION dashboard_active_finding_delta();
"""




class Migration(migrations.Migration):
    dependencies = [("dashboard", "0001_initial")]

    operations = [
        migrations.RunPython(_on_postgresql(AUDIT_APPEND_ONLY), _on_postgresql(AUDIT_DROP)),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
        migrations.RunPython(use_lz4, use_default_compression),
        migrations.RunPython(_on_postgresql(ACTIVE_COUNTS), _on_postgresql(ACTIVE_COUNTS_DROP)),
    ]
