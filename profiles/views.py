from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consistency.api import CONSISTENCY_PARAMETER, HonoursConsistency
from consistency.context import response_header_set, served_by_set
from core.schema import response_header
from profiles.domain import ProfileNotOwner, profile_data
from profiles.selectors import profile_read
from profiles.serializers import ProfileOutputSerializer, ProfileUpdateSerializer
from profiles.services import profile_update

READ_PARAMETERS = [
    CONSISTENCY_PARAMETER,
    OpenApiParameter(
        "Cache-Control",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="no-cache: skip the cache (X-Cache: bypass) and read the routed database.",
    ),
]
RESPONSE_HEADERS = {
    "X-Served-By": "What served the read: primary, replica_<n> or cache (a write: primary).",
    "X-Consistency": "The consistency level the read was served under (strong, session or "
    "eventual).",
    "X-Cache": "hit, miss or bypass (a write, or Cache-Control: no-cache).",
}
HEADER_PARAMETERS = [
    response_header(name, meaning, statuses=(200,)) for name, meaning in RESPONSE_HEADERS.items()
]
READ_DESCRIPTION = "Response headers: " + "; ".join(
    f"{name}: {meaning}" for name, meaning in RESPONSE_HEADERS.items()
)


class ProfileBaseView(HonoursConsistency, APIView):
    """Profile reads honour ``X-Consistency``: the caller's level and position store (its
    session, or its token's server-side record) are taken once DRF has authenticated it."""

    def read(self, request: Request, user_id: int) -> Response:
        no_cache = "no-cache" in request.headers.get("Cache-Control", "")
        read = profile_read(user_id=user_id, use_cache=not no_cache)
        # ``profile_data`` already has the output shape (the cache stores it): no re-serializing
        # on the hot path; ProfileOutputSerializer documents it.
        return Response(read.data)

    def update(self, request: Request, user_id: int) -> Response:
        if user_id != request.user.pk:
            raise ProfileNotOwner("you can change only your own profile")
        serializer = ProfileUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = profile_update(
            user_id=user_id, changes=serializer.validated_data, actor_id=request.user.pk
        )
        served_by_set("primary")
        response_header_set("X-Cache", "bypass")
        return Response(profile_data(profile))


class ProfileDetailView(ProfileBaseView):
    """Any authenticated user reads a profile; only its owner changes it."""

    @extend_schema(
        parameters=[*READ_PARAMETERS, *HEADER_PARAMETERS],
        responses=ProfileOutputSerializer,
        description=READ_DESCRIPTION,
    )
    def get(self, request: Request, user_id: int) -> Response:
        return self.read(request, user_id)

    @extend_schema(
        request=ProfileUpdateSerializer,
        responses=ProfileOutputSerializer,
        parameters=HEADER_PARAMETERS,
    )
    def patch(self, request: Request, user_id: int) -> Response:
        return self.update(request, user_id)


class ProfileMeView(ProfileBaseView):
    """The caller's own profile."""

    @extend_schema(
        parameters=[*READ_PARAMETERS, *HEADER_PARAMETERS],
        responses=ProfileOutputSerializer,
        description=READ_DESCRIPTION,
    )
    def get(self, request: Request) -> Response:
        return self.read(request, request.user.pk)

    @extend_schema(
        request=ProfileUpdateSerializer,
        responses=ProfileOutputSerializer,
        parameters=HEADER_PARAMETERS,
    )
    def patch(self, request: Request) -> Response:
        return self.update(request, request.user.pk)
