from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.fields import RawField
from core.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    idempotency_key_parse,
    idempotent_call,
    request_fingerprint,
)
from core.money import amount_format
from core.pagination import PaginatedListMixin, cursor_pages
from core.schema import response_header
from core.throttling import TransferCreateThrottle
from ledger.models import (
    JournalEntry,
    Posting,
    Transfer,
    TransferIdempotencyKey,
    TransferTransition,
)
from ledger.selectors import journal_entries_for_user, transfer_get, transfers_for_user
from ledger.services import transfer_create

TRANSFER_ID = "0b7f6f0e-2f7c-4f57-9a53-5d1b3c6f0a11"
TRANSFER_EXAMPLE = {
    "id": TRANSFER_ID,
    "source": 7,
    "destination": 9,
    "amount": "12.34",
    "currency": "EUR",
    "state": "completed",
    "failure_reason": "",
    "created_at": "2026-11-30T09:20:01.120000Z",
    "updated_at": "2026-11-30T09:20:01.310000Z",
    "completed_at": "2026-11-30T09:20:01.310000Z",
    "notified_at": "2026-11-30T09:20:01.400000Z",
}
PENDING_EXAMPLE = {
    **TRANSFER_EXAMPLE,
    "state": "pending",
    "updated_at": "2026-11-30T09:20:01.120000Z",
    "completed_at": None,
    "notified_at": None,
    "history": [
        {
            "from_state": "",
            "to_state": "pending",
            "actor": "user:2",
            "reason": "requested",
            "at": "2026-11-30T09:20:01.120000Z",
        }
    ],
}


class TransitionOutput(serializers.ModelSerializer):
    class Meta:
        model = TransferTransition
        fields = ["from_state", "to_state", "actor", "reason", "at"]


@extend_schema_serializer(
    examples=[OpenApiExample("transfer", value=TRANSFER_EXAMPLE, response_only=True)]
)
class TransferOutput(serializers.ModelSerializer):
    source = serializers.IntegerField(source="source_account_id")
    destination = serializers.IntegerField(source="destination_account_id")
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = [
            "id",
            "source",
            "destination",
            "amount",
            "currency",
            "state",
            "failure_reason",
            "created_at",
            "updated_at",
            "completed_at",
            "notified_at",
        ]

    def get_amount(self, transfer: Transfer) -> str:
        return amount_format(transfer.amount, currency=transfer.currency)


@extend_schema_serializer(
    examples=[
        OpenApiExample("accepted", value=PENDING_EXAMPLE, response_only=True, status_codes=[202]),
        OpenApiExample(
            "completed",
            value={
                **TRANSFER_EXAMPLE,
                "history": [
                    PENDING_EXAMPLE["history"][0],
                    *(
                        {
                            "from_state": before,
                            "to_state": after,
                            "actor": "saga",
                            "reason": reason,
                            "at": "2026-11-30T09:20:01.310000Z",
                        }
                        for before, after, reason in (
                            ("pending", "debited", "source debited"),
                            ("debited", "credited", "destination credited"),
                            ("credited", "completed", "journal entry posted"),
                        )
                    ),
                ],
            },
            response_only=True,
            status_codes=[200],
        ),
    ]
)
class TransferDetailOutput(TransferOutput):
    history = TransitionOutput(source="transitions", many=True)

    class Meta(TransferOutput.Meta):
        fields = [*TransferOutput.Meta.fields, "history"]


class TransfersView(PaginatedListMixin, APIView):
    """POST starts a transfer (202: the saga runs asynchronously; poll the transfer).
    GET lists the caller's transfers, newest first, in cursor pages."""

    pagination_class = cursor_pages("-created_at", path="/api/transfers/")

    def get_throttles(self) -> list:
        return [TransferCreateThrottle()] if self.request.method == "POST" else []

    @extend_schema_serializer(
        examples=[
            OpenApiExample(
                "transfer",
                value={"source": 7, "destination": 9, "amount": "12.34", "currency": "EUR"},
                request_only=True,
            )
        ]
    )
    class TransferCreateInput(serializers.Serializer):
        source = serializers.IntegerField(min_value=1)
        destination = serializers.IntegerField(min_value=1)
        amount = RawField(help_text='positive decimal string, e.g. "12.34"')
        currency = RawField(help_text="ISO 4217 code, e.g. EUR")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Unique per intended transfer; a retry with the same key and body "
                "gets the stored response (header Idempotent-Replayed: true).",
            ),
            response_header("Location", "The transfer's URL, to poll its state.", statuses=(202,)),
            response_header(
                REPLAYED_HEADER,
                "true when this is the stored answer to an earlier request with the same key "
                "and body (nothing was done again); absent on the first answer.",
                statuses=(202,),
            ),
        ],
        request=TransferCreateInput,
        responses={
            202: TransferDetailOutput,
            400: OpenApiResponse(description="bad input or missing Idempotency-Key"),
            404: OpenApiResponse(description="unknown account, or not the caller's source"),
            409: OpenApiResponse(description="same key still in progress"),
            422: OpenApiResponse(description="same key, other body"),
            503: OpenApiResponse(
                description="database_timeout: nothing was done; retry with the same key"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key_parse(request.headers.get(HEADER))
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        fingerprint = request_fingerprint(method="POST", path=request.path, body=request.data)

        def create() -> tuple[int, Any]:
            data = self.TransferCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            transfer = transfer_create(
                user_id=request.user.pk,
                source_id=data.validated_data["source"],
                destination_id=data.validated_data["destination"],
                amount=data.validated_data["amount"],
                currency=data.validated_data["currency"],
            )
            fresh = transfer_get(user=request.user, transfer_id=transfer.id)
            return status.HTTP_202_ACCEPTED, TransferDetailOutput(fresh).data

        result = idempotent_call(
            model=TransferIdempotencyKey,
            using="ledger",
            user_id=request.user.pk,
            key=key,
            fingerprint=fingerprint,
            call=create,
        )
        headers = {"Location": f"/api/transfers/{result.body['id']}/", **result.headers}
        return Response(result.body, status=result.status, headers=headers)

    @extend_schema(responses=TransferOutput(many=True))
    def get(self, request: Request) -> Response:
        return self.page_response(transfers_for_user(user=request.user), TransferOutput)


class TransferDetailView(APIView):
    @extend_schema(responses=TransferDetailOutput)
    def get(self, request: Request, transfer_id: str) -> Response:
        return Response(
            TransferDetailOutput(transfer_get(user=request.user, transfer_id=transfer_id)).data
        )


class PostingOutput(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id", allow_null=True, help_text="null: cash")
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Posting
        fields = ["account", "amount", "currency"]

    def get_amount(self, posting: Posting) -> str:
        return amount_format(posting.amount, currency=posting.currency)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "transfer entry",
            value={
                "id": 41,
                "kind": "transfer",
                "transfer_id": TRANSFER_ID,
                "deposit_id": None,
                "currency": "EUR",
                "description": f"transfer {TRANSFER_ID}",
                "created_at": "2026-11-30T09:20:01.300000Z",
                "postings": [
                    {"account": 7, "amount": "-12.34", "currency": "EUR"},
                    {"account": 9, "amount": "12.34", "currency": "EUR"},
                ],
            },
            response_only=True,
        )
    ]
)
class JournalEntryOutput(serializers.ModelSerializer):
    postings = PostingOutput(many=True)

    class Meta:
        model = JournalEntry
        fields = [
            "id",
            "kind",
            "transfer_id",
            "deposit_id",
            "currency",
            "description",
            "created_at",
            "postings",
        ]


class JournalEntriesView(PaginatedListMixin, APIView):
    """Journal entries touching the caller's accounts (staff: all), newest first, in cursor
    pages."""

    pagination_class = cursor_pages("-id", path="/api/ledger/entries/")

    class JournalEntriesQuery(serializers.Serializer):
        account = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        parameters=[JournalEntriesQuery],
        responses={
            200: JournalEntryOutput(many=True),
            404: OpenApiResponse(description="account: not one of the caller's (staff: unknown)"),
        },
    )
    def get(self, request: Request) -> Response:
        # A plain dict, not the QueryDict: DRF reads an empty form value of an optional field
        # as absent, and "?account=" would list every entry instead of being refused.
        query = self.JournalEntriesQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        entries = journal_entries_for_user(
            user=request.user, account_id=query.validated_data.get("account")
        )
        return self.page_response(entries, JournalEntryOutput)
