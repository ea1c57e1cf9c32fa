"""HTTP interface of the quorum store (architecture section 10): thin views over the services."""

from __future__ import annotations

from drf_spectacular.utils import (
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
        parameters=[ReadQuery],
        responses={
            200: ReadOutput,
            300: OpenApiResponse(ReadOutput, description="Siblings: concurrent versions."),
            503: OpenApiResponse(description="Fewer than R nodes answered (problem document)."),
        },
    )
    def get(self, request: Request, key: str) -> Response:
        query = ReadQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = quorum_value_get(key=key, **query.validated_data)
        return Response(
            answer.document,
            status=status.HTTP_300_MULTIPLE_CHOICES if answer.siblings > 1 else status.HTTP_200_OK,
            headers={CONTEXT_HEADER: answer.context_header},
        )

    @extend_schema(
        operation_id="quorum_value_put",
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
        query = WriteQuery(data=request.query_params)
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
        responses=serializers.ListSerializer(child=NodeStateOutput()),
    )
    def get(self, request: Request) -> Response:
        return Response([state.as_dict() for state in nodes_list()])


class NodeView(APIView):
    def get_permissions(self):
        if self.request.method == "PUT":
            return [IsAdminUser()]
        return [IsAuthenticated()]

    @extend_schema(operation_id="quorum_node_get", responses=NodeStateOutput)
    def get(self, request: Request, node: str) -> Response:
        return Response(node_get(node=node).as_dict())

    @extend_schema(
        operation_id="quorum_node_set", request=NodeStateInput, responses=NodeStateOutput
    )
    def put(self, request: Request, node: str) -> Response:
        body = NodeStateInput(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(node_state_set(node=node, **body.validated_data).as_dict())


class RingQuery(serializers.Serializer):
    key = serializers.CharField(
        required=False, allow_blank=True, max_length=200, trim_whitespace=False
    )
    n = serializers.IntegerField(min_value=1, max_value=MAX_QUORUM, required=False)


class RingView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="quorum_ring",
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
        query = RingQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(ring_describe(**query.validated_data))
