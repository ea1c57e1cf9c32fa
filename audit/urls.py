from django.urls import path

from audit.views import ReconciliationView

urlpatterns = [
    path("ledger/reconciliation/", ReconciliationView.as_view(), name="reconciliation"),
]
