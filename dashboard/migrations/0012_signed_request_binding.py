"""Signed requests no longer keep their answers: a replay is refused, never answered from a stored copy."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0011_token_all_teams")]

    operations = [
        migrations.RemoveField(model_name="signedrequest", name="status_code"),
        migrations.RemoveField(model_name="signedrequest", name="response_body"),
        migrations.RemoveField(model_name="signedrequest", name="content_type"),
    ]
