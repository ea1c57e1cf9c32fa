from rest_framework import status

from core.errors import DomainError


class QuorumParameterInvalid(DomainError):
    """N, W or R out of range (zero, negative, W or R above N, N above the node count)."""

    code = "quorum_parameter_invalid"
    title = "Invalid quorum parameter"


class QuorumKeyInvalid(DomainError):
    code = "quorum_key_invalid"
    title = "Invalid key"


class QuorumValueTooLarge(DomainError):
    code = "quorum_value_too_large"
    title = "Value too large"


class QuorumContextInvalid(DomainError):
    """The X-Causal-Context header is malformed, forged, or issued for another key."""

    code = "quorum_context_invalid"
    title = "Invalid causal context"


class QuorumKeyNotFound(DomainError):
    code = "quorum_key_not_found"
    status = status.HTTP_404_NOT_FOUND
    title = "Key not found"


class QuorumNodeUnknown(DomainError):
    code = "quorum_node_unknown"
    status = status.HTTP_404_NOT_FOUND
    title = "Unknown node"


class QuorumNodeStateInvalid(DomainError):
    """A state change this deployment cannot make (stop or freeze without process control)."""

    code = "quorum_node_state_invalid"
    title = "Node state change refused"


class QuorumNodeControlFailed(DomainError):
    code = "quorum_node_control_failed"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Node state change failed"


class QuorumWriteUnavailable(DomainError):
    """Fewer than W acknowledgements before the deadline. The write may have landed on the
    nodes that acknowledged it (fewer than W) or on others later: it is not rolled back."""

    code = "quorum_write_unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Write quorum not reached"


class QuorumReadUnavailable(DomainError):
    code = "quorum_read_unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Read quorum not reached"
