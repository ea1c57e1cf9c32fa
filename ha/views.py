"""``/api/ha/`` (staff: the cluster, its mode, switchover, the leader's kill) and
``/api/smr/`` (the replicated state machine on etcd)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ha.selectors import ha_status
from ha.serializers import (
    KillOutput,
    ModeInput,
    SmrKeyspaceOutput,
    SmrOperationInput,
    SmrReadQuery,
    SmrResultOutput,
    StatusOutput,
    SwitchoverInput,
)
from ha.services import ha_leader_kill, ha_mode_set, ha_switchover
from ha.smr import state_machine

UNAVAILABLE = OpenApiResponse(description="the cluster's managers (or etcd) do not answer")
SMR_UNKNOWN = OpenApiResponse(
    description="smr_unavailable (not applied) or smr_outcome_unknown (sent, no answer)"
)


class HaStatusView(APIView):
    """Staff. GET: the cluster's mode, leader, members (role, state, timeline, lag) and
    timeline history, and etcd's members. PATCH ``{"mode", "sync_node_count"?,
    "synchronous_commit"?}``: the replication mode, in force when this answers."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="ha_status",
        responses={
            200: StatusOutput,
            409: OpenApiResponse(description="ha_not_managed"),
            503: UNAVAILABLE,
        },
    )
    def get(self, request: Request) -> Response:
        return Response(ha_status())

    @extend_schema(
        operation_id="ha_mode_set",
        request=ModeInput,
        responses={
            200: StatusOutput,
            409: OpenApiResponse(description="ha_not_managed"),
            503: UNAVAILABLE,
        },
    )
    def patch(self, request: Request) -> Response:
        given = ModeInput(data=request.data)
        given.is_valid(raise_exception=True)
        return Response(ha_mode_set(**given.validated_data))


class HaSwitchoverView(APIView):
    """Staff: a clean switchover to ``candidate`` (or the healthiest standby)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="ha_switchover",
        request=SwitchoverInput,
        responses={
            200: StatusOutput,
            409: OpenApiResponse(description="ha_refused: no leader, or not a standby"),
            503: UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        given = SwitchoverInput(data=request.data)
        given.is_valid(raise_exception=True)
        return Response(ha_switchover(candidate=given.validated_data.get("candidate")))


class HaKillLeaderView(APIView):
    """Staff, a fault: SIGKILL of the leader's postmaster. Patroni fails over; the old leader
    rejoins as a standby (rewound)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="ha_kill_leader",
        request=None,
        responses={200: KillOutput, 503: OpenApiResponse(description="the leader is unreachable")},
    )
    def post(self, request: Request) -> Response:
        return Response(ha_leader_kill())


class SmrOperationsView(APIView):
    """Apply one operation to the state machine: ``set`` (value), ``delete``, ``increment``
    (delta, default 1), ``cas`` (expected, value). Answers the key's value after it, etcd's
    revision and the Raft term and index."""

    @extend_schema(operation_id="smr_apply", request=SmrOperationInput, responses=SmrResultOutput)
    def post(self, request: Request) -> Response:
        return Response(state_machine().apply(request.data).as_dict())


class SmrKeyspaceView(APIView):
    """Every key of the state machine with its value and revisions (linearizable)."""

    @extend_schema(
        operation_id="smr_keyspace", responses={200: SmrKeyspaceOutput, 503: SMR_UNKNOWN}
    )
    def get(self, request: Request) -> Response:
        header, keys = state_machine().keyspace()
        return Response({"revision": header.revision, "raft_term": header.raft_term, "keys": keys})


class SmrKeyView(APIView):
    """One key: linearizable by default (a quorum confirms the answering member is current),
    ``?consistency=serializable`` for the member's local copy (may be behind)."""

    @extend_schema(
        operation_id="smr_read",
        parameters=[OpenApiParameter("consistency", enum=["linearizable", "serializable"])],
        responses={200: SmrResultOutput, 503: SMR_UNKNOWN},
    )
    def get(self, request: Request, key: str) -> Response:
        query = SmrReadQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = state_machine().read(key, consistency=query.validated_data["consistency"])
        return Response(result.as_dict())
