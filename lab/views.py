"""The State Lab page: one HTML page whose own small script reads the public API and
/metrics; the only JSON served here is what no public endpoint exposes yet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lab.selectors import strategy_comparison_latest

POLL_INTERVAL_MS = 1000
SLOW_POLL_EVERY = 3
RECONCILE_EVERY = 5  # the reconciliation reads every terminal transfer: keep it rare
TRANSFER_BURST = 200
STORM_SECONDS = 6
PAIRS_PER_LEVEL = 20


@never_cache
@login_required(login_url=reverse_lazy("lab:login"))
def lab_page(request: HttpRequest) -> HttpResponse:
    config = {
        "user": {"id": request.user.pk, "username": request.user.get_username()},
        "staff": request.user.is_staff,
        "csrf": get_token(request),
        "poll_ms": POLL_INTERVAL_MS,
        "slow_every": SLOW_POLL_EVERY,
        "reconcile_every": RECONCILE_EVERY,
        "transfer_burst": TRANSFER_BURST,
        "storm_seconds": STORM_SECONDS,
        "pairs_per_level": PAIRS_PER_LEVEL,
    }
    return render(request, "lab/index.html", {"config": config, "staff": request.user.is_staff})


class LabLoginView(LoginView):
    template_name = "lab/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("lab:page")


class LabLogoutView(LogoutView):
    next_page = reverse_lazy("lab:login")


class StrategyComparisonView(APIView):
    """The latest routing-strategy comparison stored by ``make bench`` (stale-read rate,
    primary share and latency per strategy); ``available: false`` until one ran."""

    @extend_schema(
        operation_id="lab_strategy_comparison",
        responses=inline_serializer(
            "LabStrategyComparison",
            {
                "available": serializers.BooleanField(),
                "run": serializers.CharField(allow_null=True),
                "finished_at": serializers.DateTimeField(allow_null=True),
                "strategies": serializers.DictField(
                    child=serializers.DictField(child=serializers.FloatField())
                ),
            },
        ),
        examples=[
            OpenApiExample(
                "two strategies",
                description="Figures shortened to two per strategy.",
                value={
                    "available": True,
                    "run": "20261130-091500-full",
                    "finished_at": "2026-11-30T09:31:02Z",
                    "strategies": {
                        "no routing (always replica)": {
                            "stale_read_backs_pct": 38.5,
                            "primary_share_pct": 0.0,
                        },
                        "LSN routing (session)": {
                            "stale_read_backs_pct": 0.0,
                            "primary_share_pct": 21.4,
                        },
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        latest = strategy_comparison_latest()
        if latest is None:
            return Response(
                {"available": False, "run": None, "finished_at": None, "strategies": {}}
            )
        return Response(
            {
                "available": True,
                "run": latest.run,
                "finished_at": latest.finished_at,
                "strategies": latest.strategies,
            }
        )
