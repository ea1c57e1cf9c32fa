from django.core.management.base import BaseCommand, CommandError

from sharding.moves import bucket_move
from sharding.placement import bucket_map_current, rebalance_plan


class Command(BaseCommand):
    help = (
        "Spread the buckets evenly over the given shards, moving only the buckets that must "
        "move (adding a shard moves only the buckets it takes)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shards", required=True, help="comma-separated shard aliases")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options) -> None:
        from django.conf import settings

        aliases = [alias.strip() for alias in options["shards"].split(",") if alias.strip()]
        unknown = sorted(set(aliases) - set(settings.SHARD_ALIASES))
        if unknown:
            raise CommandError(f"unknown shard aliases: {', '.join(unknown)}")
        plan = rebalance_plan(list(bucket_map_current(force=True).assignment), aliases)
        self.stdout.write(f"{len(plan)} buckets to move")
        if options["dry_run"]:
            for bucket, target in sorted(plan.items()):
                self.stdout.write(f"  bucket {bucket} -> {target}")
            return
        for bucket, target in sorted(plan.items()):
            bucket_move(bucket=bucket, target=target)
            self.stdout.write(f"  bucket {bucket} -> {target}: done")
