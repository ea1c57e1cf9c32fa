from django.urls import path

from regions.views import AntiEntropyView, RegionsNetworkView, RegionsOverviewView, RegionValueView

urlpatterns = [
    path("", RegionsOverviewView.as_view(), name="regions-overview"),
    path("network", RegionsNetworkView.as_view(), name="regions-network"),
    path("anti-entropy", AntiEntropyView.as_view(), name="regions-anti-entropy"),
    path("<str:region>/<str:kind>/<str:key>", RegionValueView.as_view(), name="regions-value"),
]
