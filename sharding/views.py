"""HTTP interface of the sharding app (architecture section 6): thin views over the services."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from core.fields import StrictCharField, StrictIntegerField
from core.pagination import MAX_PAGE_SIZE, PAGE_SIZE
from sharding.counters import counter_get, counter_increment
from sharding.events import EventPage, event_create, events_for_key, events_range
from sharding.placement import KEY_MAX_LENGTH
from sharding.selectors import sharding_stats

MAX_PAYLOAD_BYTES = 8192
MAX_INCREMENT = 1_000_000_000


EVENT_EXAMPLE = {
    "id": "7164a697-c288-4f1e-8986-8f1a975cef6f",
    "key": "user:42",
    "ts": "2026-11-30T09:13:22.580653Z",
    "payload": {"action": "login"},
    "shard": "shard_2",
    "slot": 0,
}
SHARD_STATS_EXAMPLE = {
    "operations_total": 5120,
    "operations_per_second": 48.2,
    "buckets": 256,
    "counter_slots": 31,
    "events": 904,
    "status": "ok",
}


@extend_schema_serializer(
    examples=[OpenApiExample("increment", value={"by": 1}, request_only=True)]
)
class IncrementInput(serializers.Serializer):
    by = StrictIntegerField(min_value=-MAX_INCREMENT, max_value=MAX_INCREMENT, default=1)

    def validate_by(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "written",
            value={"key": "page:home", "slot": 2, "shard": "shard_0"},
            response_only=True,
        )
    ]
)
class IncrementOutput(serializers.Serializer):
    key = serializers.CharField()
    slot = serializers.IntegerField()
    shard = serializers.CharField()


class SlotOutput(serializers.Serializer):
    slot = serializers.IntegerField()
    shard = serializers.CharField()
    pos = serializers.IntegerField()
    neg = serializers.IntegerField()
    open = serializers.BooleanField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "a hot key spread over two shards",
            value={
                "key": "page:home",
                "value": 1200,
                "pos": 1210,
                "neg": 10,
                "hot": True,
                "home": "shard_2",
                "slots": [
                    {"slot": 0, "shard": "shard_2", "pos": 610, "neg": 10, "open": True},
                    {"slot": 2, "shard": "shard_0", "pos": 600, "neg": 0, "open": True},
                ],
                "in_flight": 0,
                "cached": True,
                "map_version": 1,
            },
            response_only=True,
        )
    ]
)
class CounterOutput(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.IntegerField()
    pos = serializers.IntegerField(help_text="Sum of increments (PN-counter P).")
    neg = serializers.IntegerField(help_text="Sum of decrements (PN-counter N).")
    hot = serializers.BooleanField()
    home = serializers.CharField()
    slots = SlotOutput(many=True)
    in_flight = serializers.IntegerField(help_text="Counted from folds not yet applied.")
    cached = serializers.BooleanField()
    map_version = serializers.IntegerField()


class CounterIncrementView(APIView):
    @extend_schema(
        request=IncrementInput, responses=IncrementOutput, operation_id="counter_increment"
    )
    def post(self, request: Request, key: str) -> Response:
        data = IncrementInput(data=request.data)
        data.is_valid(raise_exception=True)
        written = counter_increment(key=key, by=data.validated_data["by"])
        return Response(IncrementOutput(written).data)


class CounterQuery(serializers.Serializer):
    fresh = serializers.BooleanField(
        default=False, help_text="Merge the slots now instead of the cached merge."
    )


class CounterDetailView(APIView):
    @extend_schema(responses=CounterOutput, operation_id="counter_get", parameters=[CounterQuery])
    def get(self, request: Request, key: str) -> Response:
        query = CounterQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        value = counter_get(key=key, use_cache=not query.validated_data["fresh"])
        return Response(CounterOutput(value).data)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "event",
            value={
                "key": "user:42",
                "ts": "2026-11-30T09:13:22.580653Z",
                "payload": {"action": "login"},
            },
            request_only=True,
        )
    ]
)
class EventInput(serializers.Serializer):
    key = StrictCharField(max_length=KEY_MAX_LENGTH, trim_whitespace=False)
    ts = serializers.DateTimeField(required=False)
    payload = serializers.JSONField(default=dict)

    def validate_payload(self, value):
        if len(json.dumps(value)) > MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError(f"At most {MAX_PAYLOAD_BYTES} bytes of JSON.")
        return value


@extend_schema_serializer(
    examples=[OpenApiExample("event", value=EVENT_EXAMPLE, response_only=True, status_codes=[201])]
)
class EventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    key = serializers.CharField()
    ts = serializers.DateTimeField()
    payload = serializers.JSONField()
    shard = serializers.CharField()
    slot = serializers.IntegerField()


class EventQuery(serializers.Serializer):
    key = serializers.CharField(required=False, max_length=KEY_MAX_LENGTH, trim_whitespace=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE)
    cursor = serializers.CharField(
        required=False,
        max_length=2000,
        help_text="Given in the previous page's next (a forged or foreign one is a 400).",
    )

    def validate(self, attrs):
        if "key" not in attrs and ("since" not in attrs or "until" not in attrs):
            raise serializers.ValidationError(
                {"since": ["Give key, or since and until (a time range across every shard)."]}
            )
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return attrs


EventPageOutput = inline_serializer(
    "EventPage",
    {
        "next": serializers.URLField(
            allow_null=True,
            help_text=(
                "The next page: the same query with a cursor, opaque and signed (a forged or "
                "foreign one is a 400). The cursor keeps each shard's own position: after a "
                "partial page, the shards that did not answer are read again from where they "
                "stopped, so following next skips and repeats no row (their rows then come "
                "after later rows of other shards). Null only when every shard answered and "
                "none has more."
            ),
        ),
        "previous": serializers.URLField(
            allow_null=True,
            help_text=(
                "Always null: a scatter-gather page is merged from every shard's position, and "
                "a page back would need each shard's position before it, which the cursor does "
                "not keep. Go back by starting again from the first page."
            ),
        ),
        "results": EventOutput(many=True),
        "partial": serializers.BooleanField(
            help_text=(
                "True when a shard did not answer (see shards): its rows are missing from this "
                "page and come on a later one; a partial page always has a next."
            )
        ),
        "shards": serializers.DictField(
            child=serializers.CharField(), help_text="ok | timeout | unavailable | error"
        ),
        "map_version": serializers.IntegerField(),
    },
)


def _page_body(request: Request, page: EventPage) -> dict:
    """The lists' envelope (``core.pagination``: ``next``, ``previous``, ``results``) around a
    page of sharded events, with what scatter-gather adds (``partial``, ``shards``)."""
    next_url = (
        replace_query_param(request.build_absolute_uri(), "cursor", page.next_cursor)
        if page.next_cursor is not None
        else None
    )
    return {
        "next": next_url,
        "previous": None,
        "results": EventOutput([item.as_dict() for item in page.items], many=True).data,
        "partial": page.partial,
        "shards": page.shards,
        "map_version": page.map_version,
    }


class EventsView(APIView):
    @extend_schema(request=EventInput, responses={201: EventOutput}, operation_id="event_create")
    def post(self, request: Request) -> Response:
        data = EventInput(data=request.data)
        data.is_valid(raise_exception=True)
        event = event_create(
            key=data.validated_data["key"],
            ts=data.validated_data.get("ts") or datetime.now(UTC),
            payload=data.validated_data["payload"],
        )
        return Response(EventOutput(event.as_dict()).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[EventQuery],
        responses=EventPageOutput,
        operation_id="event_list",
        examples=[
            OpenApiExample(
                "a partial page",
                description="shard_3 timed out: its rows come on a later page, through next.",
                value={
                    "next": "http://127.0.0.1:8000/api/sharding/events/?since=2026-11-30T09%3A00"
                    "%3A00Z&until=2026-11-30T10%3A00%3A00Z&limit=1&cursor=eyJ2IjoxLC...",
                    "previous": None,
                    "results": [EVENT_EXAMPLE],
                    "partial": True,
                    "shards": {
                        "shard_0": "ok",
                        "shard_1": "ok",
                        "shard_2": "ok",
                        "shard_3": "timeout",
                    },
                    "map_version": 1,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        query = EventQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if "key" in params:
            page = events_for_key(
                key=params["key"], limit=params["limit"], cursor=params.get("cursor")
            )
        else:
            page = events_range(
                since=params["since"],
                until=params["until"],
                limit=params["limit"],
                cursor=params.get("cursor"),
            )
        return Response(_page_body(request, page))


class StatsView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ShardingStats",
            {
                "map_version": serializers.IntegerField(),
                "shards": serializers.DictField(child=serializers.DictField()),
                "imbalance": serializers.DictField(child=serializers.FloatField()),
                "hot_keys": serializers.ListField(child=serializers.DictField()),
                "heat": inline_serializer(
                    "ShardingHeat",
                    {
                        "ranges": serializers.ListField(child=serializers.DictField()),
                        "shards": serializers.DictField(child=serializers.DictField()),
                    },
                ),
                "top_keys": serializers.ListField(child=serializers.DictField()),
            },
        ),
        operation_id="sharding_stats",
        examples=[
            OpenApiExample(
                "one hot key",
                description="heat shortened to two of its 16 bucket ranges.",
                value={
                    "map_version": 1,
                    "shards": {f"shard_{n}": SHARD_STATS_EXAMPLE for n in range(4)},
                    "imbalance": {"operations_per_second": 1.31, "operations_total": 1.12},
                    "hot_keys": [
                        {
                            "key": "page:home",
                            "rate": 612.5,
                            "share": 0.71,
                            "slots": ["shard_2", "shard_0", "shard_1"],
                            "hot_since": 1796029560.2,
                        }
                    ],
                    "heat": {
                        "ranges": [
                            {"first_bucket": 0, "last_bucket": 63},
                            {"first_bucket": 64, "last_bucket": 127},
                        ],
                        "shards": {
                            "shard_0": {
                                "operations_per_second": [12.5, 0.0],
                                "operations_total": [2300, 14],
                            }
                        },
                    },
                    "top_keys": [{"key": "page:home", "rate": 612.5, "share": 0.71}],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return Response(sharding_stats())
