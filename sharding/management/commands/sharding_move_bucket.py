from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sharding.errors import BucketMoveIncomplete, BucketMoveRefused
from sharding.moves import bucket_move
from sharding.placement import bucket_of, key_validate


class Command(BaseCommand):
    help = (
        "Move one bucket to another shard: copy, catch up, freeze, verify (counts + Merkle "
        "root), switch the map, clean the source. Reads and writes continue meanwhile."
    )

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--bucket", type=int)
        which.add_argument("--key", help="move the bucket this key hashes into")
        parser.add_argument("--to", required=True, choices=settings.SHARD_ALIASES)

    def handle(self, *args, **options) -> None:
        bucket = options["bucket"]
        if bucket is None:
            bucket = bucket_of(key_validate(options["key"]))
        try:
            move = bucket_move(bucket=bucket, target=options["to"], log=self.stdout.write)
        except (BucketMoveRefused, BucketMoveIncomplete) as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"bucket {move.bucket}: {move.source} -> {move.target}, rows {move.rows_copied}, "
                f"checksum {move.source_checksum[:16]}, map v{move.map_version}"
            )
        )
