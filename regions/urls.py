from django.urls import path

from regions.views import (
    AntiEntropyView,
    RegionsNetworkView,
    RegionsOverviewView,
    RegionValueView,
    SplitBrainView,
)

urlpatterns = [
    path("", RegionsOverviewView.as_view(), name="regions-overview"),
    path("network", RegionsNetworkView.as_view(), name="regions-network"),
    path("anti-entropy", AntiEntropyView.as_view(), name="regions-anti-entropy"),
    path("split-brain", SplitBrainView.as_view(), name="regions-split-brain"),
    path("<str:region>/<str:kind>/<str:key>", RegionValueView.as_view(), name="regions-value"),
]
