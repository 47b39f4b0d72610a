"""Outbox, inbox and dead letters. Their tables exist in every module database.

The concrete models carry no database of their own: code names the alias with
``using``. For the admin, each module gets proxy models (``CatalogOutboxMessage``
...) that the router sends to that module's database.
"""

from __future__ import annotations

from django.db import models

from messaging.conf import messaging_settings
from messaging.envelope import Envelope


class CurrentTransactionId(models.Func):
    """The inserting transaction's id on PostgreSQL (NULL elsewhere), used as a column default.

    The Kafka relay publishes only rows whose transaction is older than every transaction
    still running, so a transaction that inserted early but commits late is neither skipped
    nor overtaken (see docs/messaging.md, "The polling trap"). SQLite has one writer at a
    time, so insert order is commit order there and no id is needed.
    """

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        # xid8 has no cast to bigint; through text it is exact (xid8 < 2**63 for any real cluster).
        return "(pg_current_xact_id()::text::bigint)", []


#: What an outbox row stores of its envelope, under the same names.
ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "event_version",
    "aggregate_id",
    "producer",
    "correlation_id",
    "payload",
    "occurred_at",
    "traceparent",
)


class OutboxMessage(models.Model):
    """An event recorded in the transaction of the change it describes, awaiting relay."""

    event_id = models.UUIDField(unique=True, editable=False)
    event_type = models.CharField(max_length=200, db_index=True)
    event_version = models.PositiveSmallIntegerField()
    aggregate_id = models.CharField(max_length=200)
    producer = models.CharField(max_length=50)
    correlation_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    transaction_id = models.BigIntegerField(null=True, blank=True, editable=False, db_default=CurrentTransactionId())
    #: The publishing span's W3C traceparent, NULL when tracing is off (messaging/tracing.py).
    traceparent = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(published_at__isnull=True), name="messaging_outbox_unpublished"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.event_version} #{self.aggregate_id}"

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> OutboxMessage:
        row = cls(**{name: getattr(envelope, name) for name in ENVELOPE_FIELDS})
        row.traceparent = envelope.traceparent or None
        return row

    def to_envelope(self) -> Envelope:
        fields = {name: getattr(self, name) for name in ENVELOPE_FIELDS}
        fields["traceparent"] = fields["traceparent"] or ""
        return Envelope(**fields)


class InboxEntry(models.Model):
    """One (event, handler) applied; committed with the handler's own writes."""

    event_id = models.UUIDField()
    handler = models.CharField(max_length=300)
    event_type = models.CharField(max_length=200)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "inbox entries"
        constraints = [models.UniqueConstraint(fields=["event_id", "handler"], name="messaging_inbox_once")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.handler}"


class DeadLetter(models.Model):
    """An event a handler kept failing on, parked for an operator to inspect and redrive."""

    class Status(models.TextChoices):
        PARKED = "parked", "parked"
        REDRIVEN = "redriven", "redriven"

    event_id = models.UUIDField()
    event_type = models.CharField(max_length=200, db_index=True)
    handler = models.CharField(max_length=300)
    envelope = models.JSONField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PARKED, db_index=True)
    parked_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    redriven_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event_id", "handler"], name="messaging_dead_letter_once")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} at {self.handler}"


def _module_proxy(base: type[models.Model], module: str) -> type[models.Model]:
    name = f"{module.capitalize()}{base.__name__}"
    verbose = base._meta.verbose_name
    meta = type(
        "Meta",
        (),
        {
            "proxy": True,
            "app_label": "messaging",
            "verbose_name": f"{module} {verbose}",
            "verbose_name_plural": f"{module} {base._meta.verbose_name_plural}",
        },
    )
    return type(
        name,
        (base,),
        {"Meta": meta, "__module__": __name__, "module_alias": messaging_settings.alias_for(module)},
    )


#: module -> {"outbox": proxy, "inbox": proxy, "dead_letters": proxy}; the same in every topology.
MODULE_PROXIES: dict[str, dict[str, type[models.Model]]] = {}
for _module in messaging_settings.MODULES:
    MODULE_PROXIES[_module] = {
        "outbox": _module_proxy(OutboxMessage, _module),
        "inbox": _module_proxy(InboxEntry, _module),
        "dead_letters": _module_proxy(DeadLetter, _module),
    }
    for _proxy in MODULE_PROXIES[_module].values():
        globals()[_proxy.__name__] = _proxy
