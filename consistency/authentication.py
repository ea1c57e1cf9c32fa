"""Token authentication that brings the token's positions in the same query."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class TokenWithPositionsAuthentication(TokenAuthentication):
    """DRF's token authentication, whose one query selects the token, its user and the
    token's session positions together: reading them costs no round trip of its own. The
    positions ride on the token (``request.auth.consistency_positions``) until a view that
    honours ``X-Consistency`` binds them (``consistency.store.store_for_request``).

    DRF imports this class while Django loads the apps' models: the store, which needs them,
    is imported when a request is authenticated."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        from consistency.store import positions_subquery, token_owner

        model = self.get_model()
        try:
            token = (
                model.objects.select_related("user")
                .annotate(consistency_positions=positions_subquery(token_owner(key)))
                .get(key=key)
            )
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
