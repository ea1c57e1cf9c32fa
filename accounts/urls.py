from django.urls import path

from accounts.views import AccountDetailView, AccountsView, DepositView

urlpatterns = [
    path("accounts/", AccountsView.as_view(), name="accounts"),
    path("accounts/<int:account_id>/", AccountDetailView.as_view(), name="account-detail"),
    path("accounts/<int:account_id>/deposits/", DepositView.as_view(), name="account-deposits"),
]
