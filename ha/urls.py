from django.urls import path

from ha.views import (
    HaKillLeaderView,
    HaStatusView,
    HaSwitchoverView,
    SmrKeyspaceView,
    SmrKeyView,
    SmrOperationsView,
)

urlpatterns = [
    path("ha/", HaStatusView.as_view(), name="ha-status"),
    path("ha/switchover", HaSwitchoverView.as_view(), name="ha-switchover"),
    path("ha/faults/kill-leader", HaKillLeaderView.as_view(), name="ha-kill-leader"),
    path("smr/", SmrKeyspaceView.as_view(), name="smr-keyspace"),
    path("smr/ops", SmrOperationsView.as_view(), name="smr-ops"),
    path("smr/<str:key>", SmrKeyView.as_view(), name="smr-key"),
]
