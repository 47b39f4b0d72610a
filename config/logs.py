"""Log lines every process writes the same way: text for a person, JSON for a log pipeline.

``LOG_FORMAT=json`` (the default with ``DEBUG=false``) makes every line of every process
(web, relay, consumer, commands, gunicorn's access log) one JSON object with time, level,
logger, service, module, message, and the correlation id and trace id of the request or
event it belongs to. ``LOG_FORMAT=text`` keeps a readable line for development.

The ids come from the context the line is written in: the correlation id that
``CorrelationIdMiddleware`` and event delivery set, and the current OpenTelemetry span if
tracing is on. gunicorn writes its access line after the request's context is gone, so its
filter takes the correlation id from the response header instead, and the trace id from the
``traceresponse`` header ``TracingMiddleware`` adds when tracing is on.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

from config import topology

FORMATS = ("text", "json")
#: The record attributes a JSON line carries, in this order, and their names in the line.
JSON_FIELDS = {
    "asctime": "time",
    "levelname": "level",
    "name": "logger",
    "service": "service",
    "quire_module": "module",
    "message": "message",
    "correlation_id": "correlation_id",
    "trace_id": "trace_id",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(service)s] %(name)s %(message)s"
_ACCESS_CORRELATION_ATOM = "{x-correlation-id}o"  # gunicorn's atom of that response header
_ACCESS_TRACE_ATOM = "{traceresponse}o"  # W3C Trace Context's response header: 00-<trace id>-<span id>-<flags>


def current_trace_id() -> str:
    """The W3C trace id of the current span, or "" when tracing is off (or not installed)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return ""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class ContextFilter(logging.Filter):
    """Add service, module, correlation id and trace id to every record (never drops one)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service
        # Imported here, when logging is configured (django.setup()), not when settings import
        # this file: the settings must not pull in the messaging kernel.
        from messaging.correlation import current_correlation_id

        self.current_correlation_id = current_correlation_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        # ``module`` is taken by the record (the source file's name): Quire's module goes by another.
        # A line may name its module itself (``extra={"quire_module": ...}``: the kernel's delivery
        # and relay lines speak for the module whose event it is); otherwise the logger's package says.
        record.quire_module = getattr(record, "quire_module", "") or topology.module_of(record.name) or ""
        correlation_id, trace_id = self.current_correlation_id(), current_trace_id()
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            correlation_id = correlation_id or str(record.args.get(_ACCESS_CORRELATION_ATOM, "") or "").strip("-")
            trace_id = trace_id or _trace_id_of(str(record.args.get(_ACCESS_TRACE_ATOM, "") or ""))
        record.correlation_id = correlation_id
        record.trace_id = trace_id
        return True


def _trace_id_of(traceresponse: str) -> str:
    parts = traceresponse.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter, with the time in ISO 8601 UTC to the millisecond."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """A readable line, ending with the correlation id when the line belongs to a request or event."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        correlation_id = getattr(record, "correlation_id", "")
        return f"{line} corr={correlation_id}" if correlation_id else line


def route_uncaught_to_logging() -> None:
    """Send what bypasses logging through it: uncaught exceptions (main and other threads) and warnings.

    With JSON logs a traceback printed by the interpreter would be many lines that are not JSON;
    as a record it is one line (its traceback in ``exc_info``) with the service and ids.
    """
    logging.captureWarnings(True)
    uncaught = logging.getLogger("quire.uncaught")

    def excepthook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
            return
        uncaught.critical("uncaught %s: %s", kind.__name__, value, exc_info=(kind, value, traceback))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        uncaught.critical(
            "uncaught %s in thread %s: %s",
            args.exc_type.__name__,
            name,
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def logging_config(*, log_format: str, level: str, service: str) -> dict:
    """The ``LOGGING`` dict (also gunicorn's ``logconfig_dict``) for one format."""
    if log_format == "json":
        formatter = {
            "()": "config.logs.JsonFormatter",
            "fmt": list(JSON_FIELDS),
            "rename_fields": {name: shown for name, shown in JSON_FIELDS.items() if name != shown},
        }
    else:
        formatter = {"()": "config.logs.TextFormatter", "format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.logs.ContextFilter", "service": service}},
        "formatters": {"quire": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "quire", "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "kafka": {"level": "WARNING"},
            # librdkafka's lines and client errors (the relay's confluent client, messaging/kafka/producers.py).
            "librdkafka": {"level": "WARNING"},
            # Django's own (DEFAULT_LOGGING gives them a plain console handler when DEBUG is on):
            # the same handler as everything else, once, so no line of theirs escapes the format.
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # gunicorn's own loggers: the same handler, not gunicorn's plain ones.
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
