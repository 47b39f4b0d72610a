"""Outbox, inbox and dead letters of each module this process serves, in the admin."""

from __future__ import annotations

from django.contrib import admin, messages

from messaging.conf import messaging_settings
from messaging.delivery import Outcome, dead_letter_redrive
from messaging.models import MODULE_PROXIES


class ReadOnlyAdmin(admin.ModelAdmin):
    """Messages are facts: operators inspect them, never edit them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PublishedFilter(admin.SimpleListFilter):
    title = "published"
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", "published"), ("no", "waiting")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(published_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(published_at__isnull=True)
        return queryset


class OutboxAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "event_version", "aggregate_id", "occurred_at", "published_at"]
    list_filter = [PublishedFilter, "event_type"]
    search_fields = ["event_id", "aggregate_id", "correlation_id"]
    date_hierarchy = "occurred_at"


class InboxAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "event_id", "handler", "processed_at"]
    list_filter = ["event_type", "handler"]
    search_fields = ["event_id", "handler"]


class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "handler", "status", "attempts", "parked_at", "redriven_at"]
    list_filter = ["status", "event_type", "handler"]
    search_fields = ["event_id", "handler", "error"]
    actions = ["redrive"]

    @admin.action(description="Redrive selected dead letters (apply the event again)")
    def redrive(self, request, queryset):
        counts = dict.fromkeys(Outcome, 0)
        for dead_letter in queryset.filter(status="parked"):
            try:
                counts[dead_letter_redrive(dead_letter)] += 1
            except LookupError as error:
                self.message_user(request, str(error), messages.ERROR)
        applied = counts[Outcome.APPLIED] + counts[Outcome.DUPLICATE]
        self.message_user(request, f"{applied} redriven, {counts[Outcome.FAILED]} failed again.")


for _module in messaging_settings.served_modules:
    admin.site.register(MODULE_PROXIES[_module]["outbox"], OutboxAdmin)
    admin.site.register(MODULE_PROXIES[_module]["inbox"], InboxAdmin)
    admin.site.register(MODULE_PROXIES[_module]["dead_letters"], DeadLetterAdmin)
