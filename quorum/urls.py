from django.urls import path

from quorum.views import NodesView, NodeView, RingView, ValueView

urlpatterns = [
    path("nodes/", NodesView.as_view(), name="quorum-nodes"),
    path("nodes/<str:node>", NodeView.as_view(), name="quorum-node"),
    path("ring/", RingView.as_view(), name="quorum-ring"),
    path("<str:key>", ValueView.as_view(), name="quorum-value"),
]
