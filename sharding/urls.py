from django.urls import path

from sharding.views import CounterDetailView, CounterIncrementView, EventsView, StatsView

urlpatterns = [
    path(
        "counters/<str:key>/increment",
        CounterIncrementView.as_view(),
        name="sharding-counter-increment",
    ),
    path("counters/<str:key>", CounterDetailView.as_view(), name="sharding-counter"),
    path("events/", EventsView.as_view(), name="sharding-events"),
    path("stats/", StatsView.as_view(), name="sharding-stats"),
]
