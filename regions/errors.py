"""The regions' problems: each a stable code and status (core.errors)."""

from rest_framework import status

from core.errors import DomainError


class UnknownRegion(DomainError):
    code = "region_unknown"
    status = status.HTTP_404_NOT_FOUND
    title = "Unknown region"

    def __init__(self, detail: str | None = None, *, region: str) -> None:
        super().__init__(detail or f"There is no region {region!r}; regions are r1, r2, r3.")


class UnknownKind(DomainError):
    code = "region_type_unknown"
    status = status.HTTP_404_NOT_FOUND
    title = "Unknown type"

    def __init__(self, detail: str | None = None, *, kind: str) -> None:
        super().__init__(
            detail
            or f"There is no type {kind!r}; types are lww, mv, counter, gcounter, orset, doc."
        )


class InvalidKey(DomainError):
    code = "region_key_invalid"
    title = "Invalid key"


class InvalidBody(DomainError):
    code = "region_body_invalid"
    title = "Invalid body for this type"


class ValueTooLarge(DomainError):
    code = "region_value_too_large"
    status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    title = "Value too large"


class InvalidContext(DomainError):
    code = "causal_context_invalid"
    title = "Invalid causal context"


class InvalidNetwork(DomainError):
    code = "region_network_invalid"
    title = "Invalid network"


class NetworkUnmanaged(DomainError):
    code = "region_network_unmanaged"
    status = status.HTTP_409_CONFLICT
    title = "No link proxy"


class RegionUnavailable(DomainError):
    code = "region_unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Region unavailable"


class KeyNotFound(DomainError):
    code = "region_key_not_found"
    status = status.HTTP_404_NOT_FOUND
    title = "No value"


class VignetteRunning(DomainError):
    code = "region_vignette_running"
    status = status.HTTP_409_CONFLICT
    title = "A split-brain vignette is running"
