from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account, AccountOperation
from accounts.selectors import account_get, accounts_for_user
from accounts.services import account_create, account_deposit
from core.fields import RawField
from core.money import amount_format
from core.pagination import PaginatedListMixin, cursor_pages

ACCOUNT_EXAMPLE = {
    "id": 7,
    "owner_id": 2,
    "currency": "EUR",
    "balance": "1000.00",
    "status": "active",
    "version": 3,
    "created_at": "2026-11-30T09:12:55.099782Z",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "account", value=ACCOUNT_EXAMPLE, response_only=True, status_codes=[200, 201]
        )
    ]
)
class AccountOutput(serializers.ModelSerializer):
    balance = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "owner_id", "currency", "balance", "status", "version", "created_at"]

    def get_balance(self, account: Account) -> str:
        return amount_format(account.balance, currency=account.currency)


class AccountsView(PaginatedListMixin, APIView):
    """The caller's accounts (staff: every account), oldest first, in cursor pages; POST opens
    an account for the caller."""

    pagination_class = cursor_pages("id", path="/api/accounts/")

    @extend_schema_serializer(
        examples=[OpenApiExample("open", value={"currency": "EUR"}, request_only=True)]
    )
    class AccountCreateInput(serializers.Serializer):
        currency = RawField(help_text="ISO 4217 code, e.g. EUR")

    @extend_schema(responses=AccountOutput(many=True))
    def get(self, request: Request) -> Response:
        return self.page_response(accounts_for_user(user=request.user), AccountOutput)

    @extend_schema(request=AccountCreateInput, responses={201: AccountOutput})
    def post(self, request: Request) -> Response:
        data = self.AccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_create(owner_id=request.user.pk, currency=data.validated_data["currency"])
        return Response(AccountOutput(account).data, status=status.HTTP_201_CREATED)


class AccountDetailView(APIView):
    @extend_schema(responses=AccountOutput)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(AccountOutput(account_get(user=request.user, account_id=account_id)).data)


class DepositView(APIView):
    """Staff: add money to an account (posted in the journal from the cash account)."""

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(
        examples=[OpenApiExample("deposit", value={"amount": "100.00"}, request_only=True)]
    )
    class DepositInput(serializers.Serializer):
        amount = RawField(help_text='positive decimal string, e.g. "100.00"')

    @extend_schema_serializer(
        examples=[
            OpenApiExample(
                "deposited",
                value={
                    "deposit_id": "4d6410bc-d788-4e0d-835c-26471d9b5978",
                    "account": {**ACCOUNT_EXAMPLE, "balance": "1100.00", "version": 4},
                    "amount": "100.00",
                },
                response_only=True,
                status_codes=[201],
            )
        ]
    )
    class DepositOutput(serializers.Serializer):
        deposit_id = serializers.UUIDField()
        account = AccountOutput()
        amount = serializers.CharField()

    @extend_schema(request=DepositInput, responses={201: DepositOutput})
    def post(self, request: Request, account_id: int) -> Response:
        data = self.DepositInput(data=request.data)
        data.is_valid(raise_exception=True)
        account_get(user=request.user, account_id=account_id)
        operation: AccountOperation = account_deposit(
            account_id=account_id, amount=data.validated_data["amount"]
        )
        account = account_get(user=request.user, account_id=account_id)
        body = {
            "deposit_id": operation.deposit_id,
            "account": account,
            "amount": amount_format(operation.amount, currency=operation.currency),
        }
        return Response(self.DepositOutput(body).data, status=status.HTTP_201_CREATED)
