from rest_framework import status

from core.errors import DomainError


class ShardKeyInvalid(DomainError):
    code = "shard_key_invalid"
    title = "Invalid key"


class ShardCursorInvalid(DomainError):
    code = "shard_cursor_invalid"
    title = "Invalid cursor"


class ShardUnavailable(DomainError):
    code = "shard_unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Shard unavailable"


class BucketMoveRefused(DomainError):
    code = "bucket_move_refused"
    status = status.HTTP_409_CONFLICT
    title = "Bucket move refused"


class BucketMoveIncomplete(DomainError):
    """The map switched but the move stopped before deleting the source's rows."""

    code = "bucket_move_incomplete"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Bucket move incomplete"
