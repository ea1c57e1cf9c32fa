from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.reconciliation import reconciliation_report


class ReconciliationView(APIView):
    """Staff: invariants 1-3 (and operations explain balances), with what differs."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        responses=dict[str, Any],
        examples=[
            OpenApiExample(
                "all invariants hold",
                value={
                    "money_conserved": {
                        "ok": True,
                        "currencies": [
                            {
                                "currency": "EUR",
                                "balances": 158766,
                                "held_in_transfers": 1234,
                                "deposits": 160000,
                                "ok": True,
                            }
                        ],
                    },
                    "transfer_operations": {"ok": True, "checked": 52, "differing": []},
                    "journal_matches_balances": {
                        "ok": True,
                        "differing_accounts": [],
                        "unbalanced_entries": [],
                    },
                    "operations_explain_balances": {"ok": True, "differing_accounts": []},
                    "in_flight": 1,
                    "ok": True,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return Response(reconciliation_report())
