from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.reconciliation import reconciliation_report


class ReconciliationView(APIView):
    """Staff: invariants 1-3 (and operations explain balances), with what differs."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=dict[str, Any])
    def get(self, request: Request) -> Response:
        return Response(reconciliation_report())
