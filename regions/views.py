"""HTTP interface of the regions (architecture section 9): thin views over the services."""

from __future__ import annotations

import logging

from django.db import transaction
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from regions.convergence import anti_entropy_now
from regions.errors import InvalidBody, KeyNotFound, VignetteRunning
from regions.kinds import operation_parse
from regions.network import delays_parse, groups_parse, network_set
from regions.selectors import regions_overview
from regions.splitbrain import vignette_start
from regions.store import (
    context_header,
    context_parse,
    key_check,
    region_check,
    region_value_get,
    region_value_write,
)

CONTEXT_HEADER = "X-Causal-Context"
logger = logging.getLogger(__name__)


def after_heal_enqueue() -> None:
    """The convergence clock and anti-entropy after a heal run in a worker; without a broker
    the beat's next anti-entropy round does the repair."""
    from regions.tasks import after_heal_task

    try:
        after_heal_task.delay()
    except Exception:  # the heal itself is done; its follow-up is best effort
        logger.warning("regions: after-heal task not queued", exc_info=True)


CONTEXT_PARAMETER = OpenApiParameter(
    CONTEXT_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The opaque causal context of the last read (signed by the service). A write "
    "with it obsoletes the versions that read returned; without it, an mv write becomes a "
    "sibling of what is there.",
)

ValueOutput = inline_serializer(
    "RegionValue",
    {
        "region": serializers.CharField(),
        "type": serializers.CharField(),
        "key": serializers.CharField(),
        "value": serializers.JSONField(required=False),
        "siblings": serializers.ListField(child=serializers.DictField(), required=False),
        "dot": serializers.ListField(required=False),
        "hlc": serializers.ListField(
            required=False, help_text="lww: the winner's hybrid logical clock [ms, counter, region]"
        ),
        "discarded": serializers.ListField(child=serializers.DictField(), required=False),
        "state": serializers.DictField(
            required=False, help_text="counter, gcounter: the CRDT's state"
        ),
    },
)
WriteOutput = inline_serializer(
    "RegionWrite",
    {
        "region": serializers.CharField(),
        "type": serializers.CharField(),
        "key": serializers.CharField(),
        "dot": serializers.ListField(),
        "value": serializers.JSONField(),
        "obsoleted": serializers.IntegerField(),
        "discarded": serializers.ListField(child=serializers.DictField(), required=False),
    },
)

ROOT = "f2544635f5223bc8a9b65b841001da0c"
PAIRS_EXAMPLE = [
    {"regions": [first, second], "hashes_compared": 1, "leaves_differing": 0}
    for first, second in (("r1", "r2"), ("r1", "r3"), ("r2", "r3"))
]
RECONCILED_EXAMPLE = {
    "region": "r1",
    "keys_examined": 1,
    "conflicts": {"mv": 1},
    "merged": {},
    "lww_discarded": 0,
    "siblings_open": 1,
    "cleaned": 0,
}
ANTI_ENTROPY_EXAMPLE = {
    "groups": [["r1", "r2", "r3"]],
    "pairs": PAIRS_EXAMPLE,
    "hashes_compared": 3,
    "keys_held": {"r1": 3, "r2": 3, "r3": 3},
    "leaves_differing": 0,
    "keys_repaired": 0,
    "rows_copied": 0,
    "tombstones_copied": 0,
    "rows_corrected": 0,
    "rows_removed": 0,
    "roots_before": {"r1": ROOT, "r2": ROOT, "r3": ROOT},
    "reconciled": {"r1": RECONCILED_EXAMPLE, "links_recovered": {}},
    "duration_s": 0.019,
}


def _link_example(publisher: str, subscriber: str, age_s: float) -> dict:
    return {
        "name": f"{publisher}->{subscriber}",
        "publisher": publisher,
        "subscriber": subscriber,
        "state": "streaming",
        "cut": False,
        "delay_ms": 0,
        "lag_bytes": 0,
        "slot_wal_status": "reserved",
        "apply_running": True,
        "last_message_age_s": age_s,
        "error": None,
    }


OVERVIEW_EXAMPLE = {
    "configured": True,
    "regions": [
        {
            "name": name,
            "up": True,
            "keys": 3,
            "rows": 4,
            "tombstones": 1,
            "root": ROOT,
            "siblings_open": 1,
            "lww_discarded": 0,
        }
        for name in ("r1", "r2", "r3")
    ],
    "links": [
        _link_example("r1", "r2", 0.108),
        _link_example("r1", "r3", 0.12),
        _link_example("r2", "r1", 2.329),
        _link_example("r2", "r3", 2.344),
        _link_example("r3", "r1", 2.038),
        _link_example("r3", "r2", 2.044),
    ],
    "network": {
        "managed": True,
        "groups": [["r1", "r2", "r3"]],
        "delays": {},
        "partitioned": False,
        "partitioned_at": None,
        "healed_at": None,
        "converged_at": None,
        "convergence_s": None,
    },
    "converged": True,
    "last_anti_entropy": {
        **ANTI_ENTROPY_EXAMPLE,
        "reconciled": {"r1": RECONCILED_EXAMPLE},
        "links_recovered": {},
        "at": 1796039574.9226832,
    },
    "last_vignette": None,
}


class RegionValueView(APIView):
    """One key of one type in the region the client chose (its nearest)."""

    @extend_schema(
        operation_id="region_value_get",
        examples=[
            OpenApiExample(
                "lww",
                value={
                    "region": "r1",
                    "type": "lww",
                    "key": "profile:42",
                    "value": {"city": "Oslo"},
                    "hlc": [1796039572552, 0, "r2"],
                    "dot": ["r2", 2],
                    "discarded": [],
                },
                response_only=True,
            ),
            OpenApiExample(
                "counter",
                value={
                    "region": "r1",
                    "type": "counter",
                    "key": "likes:9",
                    "value": 3,
                    "state": {"p": {"r1": 3}, "n": {}},
                },
                response_only=True,
            ),
            OpenApiExample(
                "mv siblings",
                value={
                    "region": "r3",
                    "type": "mv",
                    "key": "cart:7",
                    "siblings": [
                        {"dot": ["r1", 3], "value": ["book"]},
                        {"dot": ["r2", 3], "value": ["pen"]},
                    ],
                },
                response_only=True,
                status_codes=[300],
            ),
        ],
        parameters=[CONTEXT_PARAMETER],
        responses={
            200: ValueOutput,
            300: OpenApiResponse(ValueOutput, description="Concurrent mv versions: siblings."),
        },
    )
    def get(self, request: Request, region: str, kind: str, key: str) -> Response:
        result = region_value_get(region=region, kind=kind, key=key)
        headers = {CONTEXT_HEADER: context_header(kind, key, result.context)}
        if not result.found:
            raise KeyNotFound(f"Region {region} holds no {kind} value for {key!r}.")
        code = status.HTTP_300_MULTIPLE_CHOICES if result.conflicted else status.HTTP_200_OK
        return Response(result.body(), status=code, headers=headers)

    @extend_schema(
        operation_id="region_value_put",
        examples=[
            OpenApiExample("lww, mv", value={"value": {"city": "Oslo"}}, request_only=True),
            OpenApiExample("counter", value={"increment": 3}, request_only=True),
            OpenApiExample("orset", value={"add": "blue"}, request_only=True),
            OpenApiExample(
                "written",
                value={
                    "region": "r2",
                    "type": "lww",
                    "key": "profile:42",
                    "dot": ["r2", 2],
                    "value": {"city": "Oslo"},
                    "obsoleted": 1,
                    "discarded": [],
                },
                response_only=True,
            ),
        ],
        parameters=[CONTEXT_PARAMETER],
        request=inline_serializer(
            "RegionWriteInput",
            {
                "value": serializers.JSONField(required=False, help_text="lww, mv"),
                "increment": serializers.IntegerField(
                    required=False, help_text="counter, gcounter"
                ),
                "decrement": serializers.IntegerField(required=False, help_text="counter"),
                "add": serializers.JSONField(required=False, help_text="orset"),
                "remove": serializers.JSONField(required=False, help_text="orset"),
                "insert": serializers.DictField(required=False, help_text="doc: index, text"),
                "delete": serializers.DictField(required=False, help_text="doc: index, length"),
                "update": serializers.CharField(required=False, help_text="doc: Yjs update"),
            },
        ),
        responses={200: WriteOutput},
    )
    def put(self, request: Request, region: str, kind: str, key: str) -> Response:
        region_check(region)
        key_check(key)
        operation = operation_parse(kind, request.data)
        context = context_parse(kind, key, request.headers.get(CONTEXT_HEADER))
        result = region_value_write(
            region=region, kind=kind, key=key, operation=operation, context=context
        )
        return Response(
            result.body(), headers={CONTEXT_HEADER: context_header(kind, key, result.context)}
        )


class RegionsOverviewView(APIView):
    @extend_schema(
        operation_id="regions_overview",
        examples=[
            OpenApiExample("three regions, converged", value=OVERVIEW_EXAMPLE, response_only=True)
        ],
        responses=inline_serializer(
            "RegionsOverview",
            {
                "configured": serializers.BooleanField(),
                "regions": serializers.ListField(child=serializers.DictField()),
                "links": serializers.ListField(child=serializers.DictField()),
                "network": serializers.DictField(),
                "converged": serializers.BooleanField(),
                "last_anti_entropy": serializers.DictField(allow_null=True),
                "last_vignette": serializers.DictField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(regions_overview())


class NetworkInput(serializers.Serializer):
    groups = serializers.JSONField(
        required=False, help_text='e.g. [["r1"], ["r2", "r3"]]; one group heals'
    )
    delays = serializers.JSONField(required=False, help_text='e.g. {"r1->r2": 200} (ms)')


class RegionsNetworkView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="regions_network_put",
        examples=[
            OpenApiExample(
                "r1 cut off", value={"groups": [["r1"], ["r2", "r3"]]}, request_only=True
            ),
            OpenApiExample("heal", value={"groups": [["r1", "r2", "r3"]]}, request_only=True),
            OpenApiExample(
                "partitioned",
                value={"groups": [["r1"], ["r2", "r3"]], "delays": {}, "healed": False},
                response_only=True,
            ),
        ],
        request=NetworkInput,
        responses=inline_serializer(
            "RegionsNetwork",
            {
                "groups": serializers.ListField(),
                "delays": serializers.DictField(),
                "healed": serializers.BooleanField(),
            },
        ),
    )
    def put(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, dict) or not data or set(data) - {"groups", "delays"}:
            raise InvalidBody('Give "groups" and/or "delays".')
        groups = groups_parse(data["groups"]) if "groups" in data else None
        delays = delays_parse(data["delays"]) if "delays" in data else None
        network, healed = network_set(groups=groups, delays=delays)
        if healed:
            transaction.on_commit(after_heal_enqueue)
        return Response({"groups": network.groups, "delays": network.delays, "healed": healed})


class AntiEntropyView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="regions_anti_entropy",
        examples=[OpenApiExample("converged", value=ANTI_ENTROPY_EXAMPLE, response_only=True)],
        request=None,
        responses=inline_serializer(
            "RegionsAntiEntropy",
            {
                "groups": serializers.ListField(),
                "pairs": serializers.ListField(child=serializers.DictField()),
                "hashes_compared": serializers.IntegerField(),
                "keys_held": serializers.DictField(child=serializers.IntegerField()),
                "leaves_differing": serializers.IntegerField(),
                "keys_repaired": serializers.IntegerField(),
                "rows_copied": serializers.IntegerField(),
                "tombstones_copied": serializers.IntegerField(),
                "rows_corrected": serializers.IntegerField(),
                "rows_removed": serializers.IntegerField(),
                "roots_before": serializers.DictField(child=serializers.CharField()),
                "reconciled": serializers.DictField(),
                "duration_s": serializers.FloatField(),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        return Response(anti_entropy_now().as_dict())


class SplitBrainView(APIView):
    """The Lab's button: the vignette, short, in the background; GET /api/regions/ shows its
    timeline (``last_vignette``) as it runs."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="regions_split_brain",
        examples=[
            OpenApiExample(
                "started", value={"started": True}, response_only=True, status_codes=[202]
            )
        ],
        request=None,
        responses={
            202: inline_serializer("SplitBrainStarted", {"started": serializers.BooleanField()}),
            409: OpenApiResponse(description="A vignette already runs in this process."),
        },
    )
    def post(self, request: Request) -> Response:
        if not vignette_start():
            raise VignetteRunning()
        return Response({"started": True}, status=status.HTTP_202_ACCEPTED)
