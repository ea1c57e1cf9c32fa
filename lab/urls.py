from django.urls import path

from lab.views import LabLoginView, LabLogoutView, StrategyComparisonView, lab_page

app_name = "lab"

urlpatterns = [
    path("", lab_page, name="page"),
    path("login/", LabLoginView.as_view(), name="login"),
    path("logout/", LabLogoutView.as_view(), name="logout"),
    path(
        "api/strategy-comparison/",
        StrategyComparisonView.as_view(),
        name="strategy-comparison",
    ),
]
