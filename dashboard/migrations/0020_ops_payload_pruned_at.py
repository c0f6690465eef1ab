from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0017_audit_actions")]

    operations = [
        migrations.AddField(model_name="report", name="payload_pruned_at", field=models.DateTimeField(blank=True, null=True)),
    ]
