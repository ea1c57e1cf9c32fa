from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.faults import FaultValueInvalid, fault_specs, faults_in_force, faults_set
from core.parsers import StrictJSONParser
from core.serializers import FaultsSerializer
from core.throttling import AuthTokenThrottle

FAULTS_EXAMPLE = OpenApiExample(
    "switches",
    description="Two of the switches shown.",
    value={
        "faults": [
            {
                "name": "saga_credit_failure_rate",
                "kind": "probability",
                "value": 0.5,
                "default": 0.0,
                "description": "Probability that crediting the destination fails (the saga "
                "compensates).",
            },
            {
                "name": "crash_points",
                "kind": "choices",
                "value": ["after_debit_commit"],
                "default": [],
                "description": "Armed crash points: a process reaching one is killed with SIGKILL.",
                "choices": ["after_credit_commit", "after_debit_commit", "before_outbox_publish"],
            },
        ]
    },
    response_only=True,
)
FAULTS_CHANGE_EXAMPLE = OpenApiExample(
    "change",
    value={"saga_credit_failure_rate": 0.5, "crash_points": ["after_debit_commit"]},
    request_only=True,
)


class WhoAmIView(APIView):
    """The caller's identity: the cheapest authenticated endpoint, and the benchmarks' baseline."""

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            fields={
                "id": serializers.IntegerField(),
                "username": serializers.CharField(),
                "is_staff": serializers.BooleanField(),
            },
        ),
        examples=[
            OpenApiExample(
                "alice", value={"id": 2, "username": "alice", "is_staff": False}, response_only=True
            )
        ],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff})


class FaultsView(APIView):
    """Staff: the fault switches. GET lists them with their values as in force; PATCH changes
    the given switches; PUT sets all of them (omitted switches go back to their defaults)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=FaultsSerializer, examples=[FAULTS_EXAMPLE])
    def get(self, request: Request) -> Response:
        return Response(_faults_document(faults_in_force()))

    @extend_schema(
        request=dict[str, Any],
        responses=FaultsSerializer,
        examples=[FAULTS_CHANGE_EXAMPLE, FAULTS_EXAMPLE],
    )
    def patch(self, request: Request) -> Response:
        faults_set(values=_switch_values(request.data), actor=request.user.get_username())
        return Response(_faults_document(faults_in_force()))

    @extend_schema(
        request=dict[str, Any],
        responses=FaultsSerializer,
        examples=[FAULTS_CHANGE_EXAMPLE, FAULTS_EXAMPLE],
    )
    def put(self, request: Request) -> Response:
        given = _switch_values(request.data)
        defaults = {name: spec.default for name, spec in fault_specs().items()}
        faults_set(values={**defaults, **given}, actor=request.user.get_username())
        return Response(_faults_document(faults_in_force()))


def _switch_values(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FaultValueInvalid("the body must be an object of switch names to values")
    return dict(data)


def _faults_document(values: dict[str, Any]) -> dict[str, Any]:
    faults = []
    for name, spec in sorted(fault_specs().items()):
        entry = {
            "name": name,
            "kind": spec.kind,
            "value": values[name],
            "default": spec.default,
            "description": spec.description,
        }
        if spec.choices:
            entry["choices"] = list(spec.choices)
        faults.append(entry)
    return {"faults": faults}


class TokenObtainView(ObtainAuthToken):
    """``POST {"username", "password"}`` -> ``{"token"}``; log-in attempts are rate limited."""

    throttle_classes = [AuthTokenThrottle]
    parser_classes = [StrictJSONParser]

    @extend_schema(
        examples=[
            OpenApiExample(
                "log in",
                value={"username": "alice", "password": "statelab-demo"},
                request_only=True,
            ),
            OpenApiExample(
                "token",
                value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"},
                response_only=True,
            ),
        ]
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)
