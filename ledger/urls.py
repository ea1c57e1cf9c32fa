from django.urls import path

from ledger.views import JournalEntriesView, TransferDetailView, TransfersView

urlpatterns = [
    path("transfers/", TransfersView.as_view(), name="transfers"),
    path("transfers/<uuid:transfer_id>/", TransferDetailView.as_view(), name="transfer-detail"),
    path("ledger/entries/", JournalEntriesView.as_view(), name="journal-entries"),
]
