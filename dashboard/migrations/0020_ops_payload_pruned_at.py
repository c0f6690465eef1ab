from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0019_perf_counts")]

    operations = [
        migrations.AddField(model_name="report", name="payload_pruned_at", field=models.DateTimeField(blank=True, null=True)),
    ]
