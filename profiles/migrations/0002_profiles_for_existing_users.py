from django.db import migrations


def profiles_create(apps, schema_editor):
    """Every user that exists before profiles did gets one (new users get theirs by signal)."""
    alias = schema_editor.connection.alias
    user_model = apps.get_model("auth", "User")
    profile_model = apps.get_model("profiles", "Profile")
    missing = (
        user_model.objects.using(alias).filter(profile__isnull=True).values_list("pk", flat=True)
    )
    profile_model.objects.using(alias).bulk_create(
        [profile_model(user_id=user_id) for user_id in missing.iterator()], batch_size=1000
    )


class Migration(migrations.Migration):
    dependencies = [("profiles", "0001_initial")]

    operations = [migrations.RunPython(profiles_create, migrations.RunPython.noop)]
