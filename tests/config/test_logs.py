"""Log lines: one JSON object per line with the ids of the request or event, or a readable line."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from config.logs import ContextFilter, logging_config
from messaging.correlation import correlation


@pytest.fixture
def capture():
    """Configure a fresh logger tree with Quire's dict, writing to a list; restore afterwards."""

    def configure(log_format: str) -> list[str]:
        config = logging_config(log_format=log_format, level="INFO", service="orders")
        lines: list[str] = []

        class ListHandler(logging.Handler):
            def emit(self, record):
                lines.append(self.format(record))

        config["handlers"]["console"] = {"()": lambda: ListHandler(), "formatter": "quire", "filters": ["context"]}
        logging.config.dictConfig(config)
        return lines

    saved = logging.root.handlers[:], logging.root.level
    yield configure
    logging.root.handlers[:], _ = saved
    logging.root.setLevel(saved[1])


def test_a_json_line_carries_service_module_and_correlation_id(capture):
    lines = capture("json")

    with correlation("checkout-42"):
        logging.getLogger("orders.services").info("order %s placed", "o-1")

    (line,) = lines
    record = json.loads(line)
    assert list(record)[:8] == ["time", "level", "logger", "service", "module", "message", "correlation_id", "trace_id"]
    assert record["level"] == "INFO"
    assert record["logger"] == "orders.services"
    assert record["service"] == "orders"
    assert record["module"] == "orders"
    assert record["message"] == "order o-1 placed"
    assert record["correlation_id"] == "checkout-42"
    assert record["time"].endswith("+00:00") and "T" in record["time"]


def test_an_exception_stays_inside_its_one_json_line(capture):
    lines = capture("json")

    try:
        raise ValueError("broken payload")
    except ValueError:
        logging.getLogger("messaging.delivery").exception("handler failed")

    (line,) = lines
    record = json.loads(line)
    assert record["message"] == "handler failed"
    assert "ValueError: broken payload" in record["exc_info"]
    assert record["module"] == ""  # the kernel is no module


def test_the_text_line_is_readable_and_names_the_correlation_id(capture):
    lines = capture("text")

    with correlation("checkout-42"):
        logging.getLogger("catalog.handlers").warning("stock short")
    logging.getLogger("catalog.handlers").warning("no request here")

    assert lines[0].endswith("WARNING [orders] catalog.handlers stock short corr=checkout-42")
    assert lines[1].endswith("WARNING [orders] catalog.handlers no request here")


def test_gunicorns_access_line_takes_the_correlation_id_from_the_response_header():
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", None, None)
    record.args = {"r": "GET /api/ HTTP/1.1", "{x-correlation-id}o": "abc-123"}

    assert ContextFilter(service="catalog").filter(record) is True

    assert record.correlation_id == "abc-123"
    assert record.service == "catalog"
    assert record.trace_id == ""  # tracing off: no traceresponse header


def test_gunicorns_access_line_takes_the_trace_id_from_the_traceresponse_header():
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", None, None)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    record.args = {"r": "GET /api/ HTTP/1.1", "{traceresponse}o": f"00-{trace_id}-b7ad6b7169203331-01"}

    ContextFilter(service="catalog").filter(record)

    assert record.trace_id == trace_id


def test_a_kernel_line_that_names_its_module_keeps_it(capture):
    """Delivery and relay lines come from messaging's loggers but belong to the module whose event it is."""
    lines = capture("json")

    logging.getLogger("messaging.delivery").info("applied", extra={"quire_module": "catalog"})
    logging.getLogger("messaging.delivery").info("kernel's own line")

    assert [json.loads(line)["module"] for line in lines] == ["catalog", ""]


def test_an_uncaught_exception_in_a_thread_is_one_json_line(capture, monkeypatch, request):
    import sys
    import threading

    from config.logs import route_uncaught_to_logging

    lines = capture("json")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    route_uncaught_to_logging()
    request.addfinalizer(lambda: logging.captureWarnings(False))

    def crash():
        raise RuntimeError("wedged relay thread")

    worker = threading.Thread(target=crash, name="relay-reader")
    worker.start()
    worker.join()

    (line,) = lines
    record = json.loads(line)
    assert record["level"] == "CRITICAL"
    assert record["logger"] == "quire.uncaught"
    assert record["message"] == "uncaught RuntimeError in thread relay-reader: wedged relay thread"
    assert "RuntimeError: wedged relay thread" in record["exc_info"]


def test_djangos_own_loggers_write_json_lines_even_with_debug_on(settings, capsys):
    """DEFAULT_LOGGING's plain console handler (on when DEBUG is) must not add a non-JSON line."""
    import io
    from logging.config import dictConfig

    from django.conf import settings as django_settings
    from django.utils.log import DEFAULT_LOGGING, configure_logging

    settings.DEBUG = True
    stream = io.StringIO()
    config = logging_config(log_format="json", level="INFO", service="orders")
    config["handlers"]["console"]["stream"] = stream
    try:
        dictConfig(DEFAULT_LOGGING)  # what configure_logging does before applying LOGGING
        dictConfig(config)
        logging.getLogger("django.request").warning("Bad Request: %s", "/api/orders/cart/items/")
    finally:
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)

    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["Bad Request: /api/orders/cart/items/"]
    assert "Bad Request" not in capsys.readouterr().err  # DEFAULT_LOGGING's console handler wrote nothing
