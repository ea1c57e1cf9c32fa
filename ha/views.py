"""``/api/ha/`` (staff: the cluster, its mode, switchover, the leader's kill) and
``/api/smr/`` (the replicated state machine on etcd)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
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


def _member(name: str, port: int, role: str, *, lsn: str | None = "0/70002F0") -> dict:
    leader = role == "leader"
    return {
        "name": name,
        "role": role,
        "state": "running" if leader else "streaming",
        "timeline": 2,
        "lag_bytes": 0,
        "synchronous": role == "sync_standby",
        "host": "127.0.0.1",
        "port": port,
        "receive_lsn": None if leader else lsn,
        "replay_lsn": None if leader else lsn,
    }


def _etcd_member(port: int, member_id: str, *, is_leader: bool) -> dict:
    return {
        "url": f"http://127.0.0.1:{port}",
        "ok": True,
        "member_id": member_id,
        "leader_id": "14937525129486294788",
        "is_leader": is_leader,
        "raft_term": 2,
        "raft_index": 74,
        "raft_applied_index": 74,
        "revision": 52,
        "db_size": 40960,
        "errors": [],
    }


STATUS_EXAMPLE = {
    "mode": "sync",
    "sync_node_count": 1,
    "synchronous_commit": "on",
    "leader": "patroni_2",
    "timeline": 2,
    "members": [
        _member("patroni_1", 22000, "replica"),
        _member("patroni_2", 22001, "leader"),
        _member("patroni_3", 22002, "sync_standby"),
    ],
    "history": [
        {
            "timeline": 1,
            "switch_lsn": 117440944,
            "reason": "no recovery target specified",
            "at": "2026-11-30T11:50:48.547499+00:00",
            "new_leader": "patroni_2",
        }
    ],
    "ttl": 20,
    "loop_wait": 1,
    "etcd": [
        _etcd_member(22006, "17389838260586017041", is_leader=False),
        _etcd_member(22007, "3895923289924801415", is_leader=False),
        _etcd_member(22008, "14937525129486294788", is_leader=True),
    ],
}
STATUS_WITHOUT_ETCD = {key: value for key, value in STATUS_EXAMPLE.items() if key != "etcd"}
SMR_RESULT_EXAMPLE = {
    "key": "orders:next",
    "value": 42,
    "exists": True,
    "revision": 46,
    "mod_revision": 46,
    "version": 2,
    "raft_term": 2,
    "raft_index": 60,
    "member": "http://127.0.0.1:22006",
    "attempts": 1,
}


class HaStatusView(APIView):
    """Staff. GET: the cluster's mode, leader, members (role, state, timeline, lag) and
    timeline history, and etcd's members. PATCH ``{"mode", "sync_node_count"?,
    "synchronous_commit"?}``: the replication mode, in force when this answers."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="ha_status",
        examples=[
            OpenApiExample("a synchronous cluster", value=STATUS_EXAMPLE, response_only=True)
        ],
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
        examples=[
            OpenApiExample(
                "synchronous, one standby",
                value={"mode": "sync", "sync_node_count": 1},
                request_only=True,
            ),
            OpenApiExample(
                "in force",
                value=STATUS_WITHOUT_ETCD,
                response_only=True,
            ),
        ],
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
        examples=[
            OpenApiExample("to patroni_2", value={"candidate": "patroni_2"}, request_only=True),
            OpenApiExample(
                "switched over",
                value={
                    "message": 'Successfully switched over to "patroni_2"',
                    **STATUS_WITHOUT_ETCD,
                },
                response_only=True,
            ),
        ],
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
        examples=[
            OpenApiExample(
                "killed",
                value={
                    "leader": "patroni_2",
                    "port": 22001,
                    "postmaster_pid": 20412,
                    "killed_at": 1796039530.214,
                },
                response_only=True,
            )
        ],
        request=None,
        responses={200: KillOutput, 503: OpenApiResponse(description="the leader is unreachable")},
    )
    def post(self, request: Request) -> Response:
        return Response(ha_leader_kill())


class SmrOperationsView(APIView):
    """Apply one operation to the state machine: ``set`` (value), ``delete``, ``increment``
    (delta, default 1), ``cas`` (expected, value). Answers the key's value after it, etcd's
    revision and the Raft term and index."""

    @extend_schema(
        operation_id="smr_apply",
        request=SmrOperationInput,
        responses={
            200: SmrResultOutput,
            409: OpenApiResponse(
                description="smr_compare_failed (cas: the key holds another value), "
                "smr_not_a_number (increment) or smr_contended; nothing changed"
            ),
            503: SMR_UNKNOWN,
        },
        examples=[
            OpenApiExample(
                "increment", value={"op": "increment", "key": "orders:next"}, request_only=True
            ),
            OpenApiExample(
                "set", value={"op": "set", "key": "orders:next", "value": 41}, request_only=True
            ),
            OpenApiExample(
                "cas",
                value={"op": "cas", "key": "orders:next", "expected": 42, "value": 43},
                request_only=True,
            ),
            OpenApiExample("incremented", value=SMR_RESULT_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        return Response(state_machine().apply(request.data).as_dict())


class SmrKeyspaceView(APIView):
    """Every key of the state machine with its value and revisions (linearizable)."""

    @extend_schema(
        operation_id="smr_keyspace",
        responses={200: SmrKeyspaceOutput, 503: SMR_UNKNOWN},
        examples=[
            OpenApiExample(
                "one key",
                value={
                    "revision": 46,
                    "raft_term": 2,
                    "keys": [
                        {
                            "key": "orders:next",
                            "value": 42,
                            "mod_revision": 46,
                            "create_revision": 45,
                            "version": 2,
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        header, keys = state_machine().keyspace()
        return Response({"revision": header.revision, "raft_term": header.raft_term, "keys": keys})


class SmrKeyView(APIView):
    """One key: linearizable by default (a quorum confirms the answering member is current),
    ``?consistency=serializable`` for the member's local copy (may be behind)."""

    @extend_schema(
        operation_id="smr_read",
        examples=[
            OpenApiExample(
                "linearizable",
                value={**SMR_RESULT_EXAMPLE, "raft_index": None},
                response_only=True,
            )
        ],
        parameters=[OpenApiParameter("consistency", enum=["linearizable", "serializable"])],
        responses={200: SmrResultOutput, 503: SMR_UNKNOWN},
    )
    def get(self, request: Request, key: str) -> Response:
        query = SmrReadQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        result = state_machine().read(key, consistency=query.validated_data["consistency"])
        return Response(result.as_dict())
