from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.health import healthz, readyz
from core.metrics import metrics_view
from core.views import FaultsView, TokenObtainView, WhoAmIView

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenObtainView.as_view(), name="auth-token"),
    path("api/auth/whoami/", WhoAmIView.as_view(), name="whoami"),
    path("api/faults/", FaultsView.as_view(), name="faults"),
    path("api/", include("accounts.urls")),
    path("api/", include("ledger.urls")),
    path("api/", include("audit.urls")),
    path("api/profiles/", include("profiles.urls")),
    path("api/sharding/", include("sharding.urls")),
    path("api/quorum/", include("quorum.urls")),
    path("api/regions/", include("regions.urls")),
    path("api/", include("ha.urls")),
    path("lab/", include("lab.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
