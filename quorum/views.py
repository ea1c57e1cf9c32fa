"""HTTP interface of the quorum store (architecture section 10): thin views over the services."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devstack.linkproxy import MAX_DELAY_MS
from quorum.control import DOWN_HOWS, STATES, node_get, node_state_set, nodes_list
from quorum.selectors import ring_describe
from quorum.services import quorum_value_get, quorum_value_put

CONTEXT_HEADER = "X-Causal-Context"
MAX_QUORUM = 64

CONTEXT_PARAMETER = OpenApiParameter(
    CONTEXT_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The causal context of the last read or write of this key (opaque, signed).",
)

CART = {"items": ["book"]}
OVERLAP_EXAMPLE = {"n": 3, "w": 2, "r": 2, "w_plus_r_gt_n": True}
VERSION_EXAMPLE = {"dot": ["n1", 1], "context": {}, "value": CART}


def _node_example(name: str, pid: int, listen: int, **route: object) -> dict:
    delay_ms, jitter_ms = route.get("delay_ms", 0), route.get("jitter_ms", 0)
    return {
        "name": name,
        "state": "slow" if delay_ms or jitter_ms else "up",
        "how": None,
        "delay_ms": delay_ms,
        "jitter_ms": jitter_ms,
        "process": "running",
        "pid": pid,
        "route": {
            "listen": listen,
            "target": listen - 41,
            "delay_ms": delay_ms,
            "jitter_ms": jitter_ms,
            "cut": False,
            "refuse_after_ms": 0,
            "open_connections": route.get("open_connections", 1),
            "connections_total": route.get("open_connections", 1),
            "refused_total": 0,
            "bytes_forwarded": route.get("bytes_forwarded", 6331),
        },
        "control": "processes",
    }


class WriteQuery(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)
    w = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)
    r = serializers.IntegerField(
        min_value=1,
        max_value=MAX_QUORUM,
        required=False,
        help_text="The R reads of this key use (only for the answer's w + r > n).",
    )
    sloppy = serializers.BooleanField(default=False)


class ReadQuery(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)
    r = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)
    w = serializers.IntegerField(
        min_value=1,
        max_value=MAX_QUORUM,
        required=False,
        help_text="The W writes of this key use (only for the answer's w + r > n).",
    )


class ValueInput(serializers.Serializer):
    value = serializers.JSONField(help_text="Any JSON value.")


class OverlapOutput(serializers.Serializer):
    n = serializers.IntegerField()
    w = serializers.IntegerField()
    r = serializers.IntegerField()
    w_plus_r_gt_n = serializers.BooleanField()


class VersionOutput(serializers.Serializer):
    dot = serializers.ListField(help_text="[node, counter]: the write event of this version.")
    # DRF's serializer metaclass takes declared fields off the class: this field does not
    # replace Serializer.context (the serializer's context dict), whatever the stubs say.
    context = serializers.DictField(child=serializers.IntegerField())  # type: ignore[assignment]
    value = serializers.JSONField()


class WriteOutput(serializers.Serializer):
    key = serializers.CharField()
    n = serializers.IntegerField()
    w = serializers.IntegerField()
    sloppy = serializers.BooleanField()
    preference_list = serializers.ListField(child=serializers.CharField())
    coordinator = serializers.CharField(allow_null=True)
    dot = serializers.ListField(allow_null=True)
    acknowledged = serializers.ListField(child=serializers.DictField())
    acknowledgements_counted = serializers.IntegerField()
    hinted = serializers.ListField(child=serializers.DictField())
    pending = serializers.ListField(child=serializers.CharField())
    failed = serializers.ListField(child=serializers.DictField())
    overlap = OverlapOutput()
    elapsed_ms = serializers.FloatField()


class ReadOutput(serializers.Serializer):
    key = serializers.CharField()
    n = serializers.IntegerField()
    r = serializers.IntegerField()
    preference_list = serializers.ListField(child=serializers.CharField())
    asked = serializers.ListField(child=serializers.CharField())
    answered = serializers.ListField(child=serializers.CharField())
    failed = serializers.ListField(child=serializers.DictField())
    versions_seen = serializers.DictField(child=VersionOutput(many=True))
    siblings = VersionOutput(many=True)
    value = serializers.JSONField(allow_null=True, help_text="The value when there is one.")
    repairs = serializers.ListField(child=serializers.DictField())
    overlap = OverlapOutput()
    elapsed_ms = serializers.FloatField()


class ValueView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="quorum_value_get",
        examples=[
            OpenApiExample(
                "one version",
                value={
                    "key": "cart:42",
                    "n": 3,
                    "r": 2,
                    "preference_list": ["n1", "n2", "n5"],
                    "asked": ["n5", "n1"],
                    "answered": ["n5", "n1"],
                    "failed": [],
                    "versions_seen": {"n5": [VERSION_EXAMPLE], "n1": [VERSION_EXAMPLE]},
                    "siblings": [VERSION_EXAMPLE],
                    "value": CART,
                    "repairs": [],
                    "overlap": OVERLAP_EXAMPLE,
                    "elapsed_ms": 4.4,
                },
                response_only=True,
            )
        ],
        parameters=[ReadQuery],
        responses={
            200: ReadOutput,
            300: OpenApiResponse(ReadOutput, description="Siblings: concurrent versions."),
            503: OpenApiResponse(description="Fewer than R nodes answered (problem document)."),
        },
    )
    def get(self, request: Request, key: str) -> Response:
        query = ReadQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        answer = quorum_value_get(key=key, **query.validated_data)
        return Response(
            answer.document,
            status=status.HTTP_300_MULTIPLE_CHOICES if answer.siblings > 1 else status.HTTP_200_OK,
            headers={CONTEXT_HEADER: answer.context_header},
        )

    @extend_schema(
        operation_id="quorum_value_put",
        examples=[
            OpenApiExample("a cart", value={"value": CART}, request_only=True),
            OpenApiExample(
                "W acknowledged",
                value={
                    "key": "cart:42",
                    "n": 3,
                    "w": 2,
                    "sloppy": False,
                    "preference_list": ["n1", "n2", "n5"],
                    "coordinator": "n1",
                    "dot": ["n1", 1],
                    "acknowledged": [{"node": "n1", "ms": 86.5}, {"node": "n5", "ms": 54.9}],
                    "acknowledgements_counted": 2,
                    "hinted": [],
                    "pending": ["n2"],
                    "failed": [],
                    "overlap": OVERLAP_EXAMPLE,
                    "elapsed_ms": 146.9,
                },
                response_only=True,
            ),
        ],
        parameters=[WriteQuery, CONTEXT_PARAMETER],
        request=ValueInput,
        responses={
            200: WriteOutput,
            503: OpenApiResponse(
                description="Fewer than W acknowledgements (problem document with what "
                "acknowledged; the write may have landed there)."
            ),
        },
    )
    def put(self, request: Request, key: str) -> Response:
        query = WriteQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        body = ValueInput(data=request.data)
        body.is_valid(raise_exception=True)
        answer = quorum_value_put(
            key=key,
            value=body.validated_data["value"],
            context_header=request.headers.get(CONTEXT_HEADER),
            **query.validated_data,
        )
        return Response(answer.document, headers={CONTEXT_HEADER: answer.context_header})


class NodeStateOutput(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.CharField(help_text=" | ".join(STATES))
    how = serializers.CharField(allow_null=True, help_text="stop | freeze | cut | unreachable")
    delay_ms = serializers.IntegerField()
    jitter_ms = serializers.IntegerField()
    process = serializers.CharField(help_text="running | stopped | frozen | unknown")
    pid = serializers.IntegerField(allow_null=True)
    route = serializers.DictField(allow_null=True)
    control = serializers.CharField(help_text="processes | proxy")


class NodeStateInput(serializers.Serializer):
    # Not a ChoiceField: its enum would be named after "state" like the transfers' one.
    state = serializers.CharField(max_length=16, help_text=" | ".join(STATES))
    how = serializers.ChoiceField(choices=DOWN_HOWS, required=False, allow_null=True)
    delay_ms = serializers.IntegerField(min_value=0, max_value=MAX_DELAY_MS, required=False)
    jitter_ms = serializers.IntegerField(min_value=0, max_value=MAX_DELAY_MS, required=False)


class NodesView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="quorum_nodes_list",
        examples=[
            OpenApiExample(
                "five nodes, one slow",
                value=[
                    _node_example("n1", 22148, 22091),
                    _node_example("n2", 22186, 22092, bytes_forwarded=5531),
                    _node_example(
                        "n3", 22215, 22093, delay_ms=200, jitter_ms=50, open_connections=0
                    ),
                    _node_example("n4", 22240, 22094, open_connections=0, bytes_forwarded=0),
                    _node_example("n5", 22266, 22095, bytes_forwarded=6341),
                ],
                response_only=True,
            )
        ],
        responses=serializers.ListSerializer(child=NodeStateOutput()),
    )
    def get(self, request: Request) -> Response:
        return Response([state.as_dict() for state in nodes_list()])


class NodeView(APIView):
    def get_permissions(self):
        if self.request.method == "PUT":
            return [IsAdminUser()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="quorum_node_get",
        responses=NodeStateOutput,
        examples=[
            OpenApiExample("up", value=_node_example("n1", 22148, 22091), response_only=True)
        ],
    )
    def get(self, request: Request, node: str) -> Response:
        return Response(node_get(node=node).as_dict())

    @extend_schema(
        operation_id="quorum_node_set",
        request=NodeStateInput,
        responses=NodeStateOutput,
        examples=[
            OpenApiExample(
                "slow", value={"state": "slow", "delay_ms": 200, "jitter_ms": 50}, request_only=True
            ),
            OpenApiExample(
                "down: frozen", value={"state": "down", "how": "freeze"}, request_only=True
            ),
            OpenApiExample(
                "slowed",
                value=_node_example(
                    "n3", 22215, 22093, delay_ms=200, jitter_ms=50, open_connections=0
                ),
                response_only=True,
            ),
        ],
    )
    def put(self, request: Request, node: str) -> Response:
        body = NodeStateInput(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(node_state_set(node=node, **body.validated_data).as_dict())


# The query serializers read a plain dict, not the QueryDict: DRF takes an empty value in a
# QueryDict (``?n=``) for an absent one, and an empty number must be a 400.
class RingQuery(serializers.Serializer):
    key = serializers.CharField(
        required=False, allow_blank=True, max_length=200, trim_whitespace=False
    )
    n = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)


class RingView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="quorum_ring",
        examples=[
            OpenApiExample(
                "with a key (tokens cut to the first four of 320)",
                value={
                    "nodes": ["n1", "n2", "n3", "n4", "n5"],
                    "vnodes": 64,
                    "tokens": [
                        [0.010015, "n1"],
                        [0.021213, "n1"],
                        [0.023093, "n1"],
                        [0.024024, "n4"],
                    ],
                    "shares": {
                        "n1": 0.1855,
                        "n2": 0.1965,
                        "n3": 0.1714,
                        "n4": 0.1968,
                        "n5": 0.2499,
                    },
                    "defaults": {"n": 3, "w": 2, "r": 2},
                    "key": {
                        "key": "cart:42",
                        "position": 0.322721,
                        "n": 3,
                        "preference_list": ["n1", "n2", "n5"],
                        "fallbacks": ["n3", "n4"],
                    },
                },
                response_only=True,
            )
        ],
        parameters=[RingQuery],
        responses=inline_serializer(
            "QuorumRing",
            {
                "nodes": serializers.ListField(child=serializers.CharField()),
                "vnodes": serializers.IntegerField(),
                "tokens": serializers.ListField(
                    child=serializers.ListField(),
                    help_text="[position as a fraction of the ring, owner] per virtual node",
                ),
                "shares": serializers.DictField(child=serializers.FloatField()),
                "defaults": serializers.DictField(child=serializers.IntegerField()),
                "key": serializers.DictField(
                    allow_null=True,
                    help_text="key, position, n, preference_list, fallbacks",
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = RingQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(ring_describe(**query.validated_data))
