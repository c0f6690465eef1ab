"""Changes to what enforcement decisions read, recorded by PostgreSQL itself (models/policies.py DecisionChange).

Triggers, not application code, so that every path that writes these tables (the ORM, COPY, ``UPDATE ... FROM
VALUES``, a bulk ``update()``, an operator's SQL) leaves its mark in the same transaction as the change: the
decision memo can only be as exact as this record.  Statement triggers with transition tables write one row per
statement and image, whatever the number of rows.  The token's teams use a row trigger instead: transition tables
cannot be combined with a column list, and a token's row is rewritten once a minute per token for its "last used"
time, which changes no decision.  A no-op on SQLite, where the memo is off.
"""

from django.db import migrations, models

IMAGE_COLUMN_FUNCTIONS = """
CREATE OR REPLACE FUNCTION vigil_decision_change_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL ORDER BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT DISTINCT {column} FROM old_rows WHERE {column} IS NOT NULL ORDER BY 1;
    ELSE
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT {column} FROM new_rows WHERE {column} IS NOT NULL
            UNION SELECT {column} FROM old_rows WHERE {column} IS NOT NULL ORDER BY 1;
    END IF;
    RETURN NULL;
END $$;
"""

# A finding's UPDATE counts only when it changes a column a decision reads (dashboard/db/decision_findings.py
# COLUMNS: what blocks, what the warning says, whose it is).  Event findings are rewritten with every alert or
# denial for their count, last seen and latest details; that moves no decision and must not make every decision
# on a running image read its inputs again.  The columns that only pick the training module (CLASS_COLUMNS and two
# keys of details) are left out: teaching may lag by the memo's minute, as the catalogue does, and extracting
# details of every updated row is the costliest part of such a comparison.
DECIDING = (
    "image_id", "team_id", "status", "severity", "kind", "rule_id", "title", "package_name", "package_version",
    "fixed_version", "kev", "epss", "due_date",
)  # fmt: skip


DECIDING_LIST = ", ".join(("id", *DECIDING))


FINDING_FUNCTION = f"""
CREATE OR REPLACE FUNCTION vigil_decision_change_finding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT DISTINCT image_id FROM new_rows WHERE image_id IS NOT NULL ORDER BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT DISTINCT image_id FROM old_rows WHERE image_id IS NOT NULL ORDER BY 1;
    ELSE
        -- The rows whose deciding columns differ between old and new: a set difference each way, hashed.  A join
        -- of the two transition tables (no statistics, no index) took 236 ms against 7 ms over a 10k re-scan.
        INSERT INTO dashboard_decisionchange (image_id)
            SELECT DISTINCT image_id FROM (
                (SELECT {DECIDING_LIST} FROM new_rows EXCEPT ALL SELECT {DECIDING_LIST} FROM old_rows)
                UNION ALL
                (SELECT {DECIDING_LIST} FROM old_rows EXCEPT ALL SELECT {DECIDING_LIST} FROM new_rows)
            ) AS changed WHERE image_id IS NOT NULL ORDER BY 1;
    END IF;
    RETURN NULL;
END $$;
"""  # noqa: S608 - the column names come from DECIDING, no input

GLOBAL_FUNCTION = """
CREATE OR REPLACE FUNCTION vigil_decision_change_global() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition table its kind of statement has.
    IF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_decisionchange (image_id) SELECT 0 WHERE EXISTS (SELECT 1 FROM old_rows);
    ELSE
        INSERT INTO dashboard_decisionchange (image_id) SELECT 0 WHERE EXISTS (SELECT 1 FROM new_rows);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION vigil_decision_change_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dashboard_decisionchange (image_id) VALUES (0);
    RETURN NULL;
END $$;
"""

#: (table, function): the image's own rows and the rows that name an image.
IMAGE_TABLES = (
    ("dashboard_finding", "finding"),
    ("dashboard_imageversion", "by_image_id"),
    ("dashboard_image", "image"),
)
#: Tables whose change may move any decision: who decides (policies, namespace rules, team names) and what
#: exempts (risk acceptances and the findings they cover), and a token's extra teams (what the gate reads).
GLOBAL_TABLES = (
    "dashboard_enforcementpolicy",
    "dashboard_ownershiprule",
    "dashboard_team",
    "dashboard_riskacceptance",
    "dashboard_riskacceptance_findings",
    "dashboard_apitoken_extra_teams",
)


def _triggers(table: str, function: str) -> str:
    return "\n".join(
        f"CREATE TRIGGER vigil_decision_change_{kind} AFTER {kind.upper()} ON {table} REFERENCING {refs}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION vigil_decision_change_{function}();"
        for kind, refs in (
            ("insert", "NEW TABLE AS new_rows"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("delete", "OLD TABLE AS old_rows"),
        )
    )


CREATE = "\n".join(
    [
        IMAGE_COLUMN_FUNCTIONS.format(name="by_image_id", column="image_id"),
        IMAGE_COLUMN_FUNCTIONS.format(name="image", column="id"),
        FINDING_FUNCTION,
        GLOBAL_FUNCTION,
        *(_triggers(table, function) for table, function in IMAGE_TABLES),
        *(_triggers(table, "global") for table in GLOBAL_TABLES),
        "CREATE TRIGGER vigil_decision_change_token AFTER UPDATE OF team_id, all_teams, scope ON dashboard_apitoken"
        " FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id OR OLD.all_teams IS DISTINCT FROM NEW.all_teams"
        " OR OLD.scope IS DISTINCT FROM NEW.scope) EXECUTE FUNCTION vigil_decision_change_token();",
    ]
)
DROP = "\n".join(
    [
        *(
            f"DROP TRIGGER vigil_decision_change_{kind} ON {table};"
            for table in (*(t for t, _ in IMAGE_TABLES), *GLOBAL_TABLES)
            for kind in ("insert", "update", "delete")
        ),
        "DROP TRIGGER vigil_decision_change_token ON dashboard_apitoken;",
        "DROP FUNCTION vigil_decision_change_by_image_id(); DROP FUNCTION vigil_decision_change_image();",
        "DROP FUNCTION vigil_decision_change_finding();",
        "DROP FUNCTION vigil_decision_change_global(); DROP FUNCTION vigil_decision_change_token();",
    ]
)


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0007_churn_entry_hash")]

    operations = [
        migrations.CreateModel(
            name="DecisionChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("image_id", models.BigIntegerField()),
            ],
            options={"indexes": [models.Index(fields=["image_id", "id"], name="decision_change_image")]},
        ),
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP)),
    ]
