"""Admin: the network (read-only: it changes through PUT /api/regions/network) and a page to
resolve an mv key's siblings, by keeping one of them or writing a new value with the context
of what was shown (so the resolution obsoletes exactly those siblings)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin import ReadOnlyMixin
from core.errors import DomainError
from regions.conf import REGION_NAMES
from regions.kinds import operation_parse
from regions.models import RegionNetwork
from regions.selectors import sibling_keys
from regions.store import context_header, context_parse, region_value_get, region_value_write


@admin.register(RegionNetwork)
class RegionNetworkAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "delays", "partitioned_at", "healed_at", "converged_at")
    change_list_template = "admin/regions/network_changelist.html"

    def get_urls(self):
        own = [
            path(
                "siblings/",
                self.admin_site.admin_view(self.siblings_view),
                name="regions_siblings",
            ),
            path(
                "siblings/<str:region>/<str:key>/",
                self.admin_site.admin_view(self.resolve_view),
                name="regions_resolve",
            ),
        ]
        return own + super().get_urls()

    def siblings_view(self, request: HttpRequest) -> HttpResponse:
        region = request.GET.get("region", REGION_NAMES[0])
        if region not in REGION_NAMES:
            region = REGION_NAMES[0]
        try:
            keys, error = sibling_keys(region), None
        except DomainError as failure:
            keys, error = [], failure.detail
        context = {
            **self.admin_site.each_context(request),
            "title": f"mv keys with siblings in {region}",
            "regions": REGION_NAMES,
            "region": region,
            "keys": keys,
            "error": error,
        }
        return TemplateResponse(request, "admin/regions/siblings.html", context)

    def resolve_view(self, request: HttpRequest, region: str, key: str) -> HttpResponse:
        if not self.has_view_permission(request) or not request.user.is_staff:
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            current = region_value_get(region=region, kind="mv", key=key)
        except DomainError as failure:
            self.message_user(request, failure.detail, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:regions_siblings"))
        shown = context_header("mv", key, current.context)
        if request.method == "POST":
            choice = request.POST.get("choice", "")
            try:
                if choice == "custom":
                    value = json.loads(request.POST.get("value", ""))
                else:
                    value = current.siblings[int(choice)]["value"]
                operation = operation_parse("mv", {"value": value})
                clock = context_parse("mv", key, request.POST.get("context"))
                region_value_write(
                    region=region, kind="mv", key=key, operation=operation, context=clock
                )
            except (ValueError, IndexError):
                self.message_user(request, "Pick a sibling or give valid JSON.", messages.ERROR)
            except DomainError as failure:
                self.message_user(request, failure.detail, level=messages.ERROR)
            else:
                self.message_user(request, f"{key} resolved in {region}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:regions_siblings") + f"?region={region}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resolve {key} in {region}",
            "region": region,
            "key": key,
            "current": current,
            "siblings": [
                {"index": index, "value": json.dumps(sibling["value"]), "dot": sibling["dot"]}
                for index, sibling in enumerate(current.siblings)
            ],
            "context_token": shown,
        }
        return TemplateResponse(request, "admin/regions/resolve.html", context)
