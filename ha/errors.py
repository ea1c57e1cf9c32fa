"""The app's problems: each a stable code, an HTTP status and a title (core.errors)."""

from __future__ import annotations

from core.errors import DomainError


class HaUnavailable(DomainError):
    """No member of the cluster's managers (Patroni) or of etcd answered."""

    code = "ha_unavailable"
    status = 503
    title = "Service Unavailable"


class HaNotManaged(DomainError):
    """The Postgres in use is not a Patroni cluster this service knows (no PATRONI_URLS)."""

    code = "ha_not_managed"
    status = 409
    title = "Conflict"


class HaModeInvalid(DomainError):
    code = "ha_mode_invalid"
    status = 400
    title = "Bad Request"


class HaRefused(DomainError):
    """The cluster refused the change (e.g. a switchover without a healthy candidate)."""

    code = "ha_refused"
    status = 409
    title = "Conflict"


class SmrOperationInvalid(DomainError):
    code = "smr_operation_invalid"
    status = 400
    title = "Bad Request"


class SmrKeyInvalid(DomainError):
    code = "smr_key_invalid"
    status = 400
    title = "Bad Request"


class SmrNotANumber(DomainError):
    """An increment of a key whose value is not an integer."""

    code = "smr_not_a_number"
    status = 409
    title = "Conflict"


class SmrCompareFailed(DomainError):
    """A compare-and-set whose expected value was not the key's value: nothing changed."""

    code = "smr_compare_failed"
    status = 409
    title = "Conflict"


class SmrContended(DomainError):
    """An increment that lost its compare-and-swap every time it was retried."""

    code = "smr_contended"
    status = 409
    title = "Conflict"


class SmrOutcomeUnknown(DomainError):
    """etcd did not answer after the operation was sent: it may or may not have been applied
    (never retried, since a retry could apply it twice)."""

    code = "smr_outcome_unknown"
    status = 503
    title = "Service Unavailable"


class SmrUnavailable(DomainError):
    """No etcd member took the operation (it was not applied)."""

    code = "smr_unavailable"
    status = 503
    title = "Service Unavailable"
