# The audit log is append-only in the database too (PostgreSQL): UPDATE and DELETE of a row fail.
# TRUNCATE (test database flushes, an operator's deliberate purge) is not affected.

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION vigil_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS vigil_audit_append_only ON dashboard_auditevent;
CREATE TRIGGER vigil_audit_append_only BEFORE UPDATE OR DELETE ON dashboard_auditevent
    FOR EACH ROW EXECUTE FUNCTION vigil_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS vigil_audit_append_only ON dashboard_auditevent;
DROP FUNCTION IF EXISTS vigil_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL is sent as is (with params, Django's PostgreSQL backend would read the
        # plpgsql `%` placeholder as a query parameter and fail with IndexError).
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_features"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
