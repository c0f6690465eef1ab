from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0010_payload_encoding"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="all_teams",
            field=models.BooleanField(default=False),
        ),
    ]
