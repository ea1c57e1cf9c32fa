from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "profiles (session consistency)"

    def ready(self) -> None:
        from profiles import signals  # noqa: F401 - connects the receivers

    def seed_demo(self, users: dict) -> None:
        from profiles.services import profile_ensure, profile_update

        demo = {
            "alice": {"display_name": "Alice", "bio": "Sees her own edits at once."},
            "bob": {"display_name": "Bob", "bio": "Reads profiles from the replica."},
            "admin": {"display_name": "Admin"},
        }
        for username, user in users.items():
            profile = profile_ensure(user_id=user.pk)
            if not profile.display_name and username in demo:
                profile_update(user_id=user.pk, changes=demo[username], actor_id=user.pk)
