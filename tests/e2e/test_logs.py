"""The logs of one checkout, as an operator would follow it: JSON lines joined by one correlation id.

The shop logs ``LOG_FORMAT=json`` (as in production). A checkout sent with its own
``X-Correlation-ID`` must show up under that id in the orders web log (gunicorn's access line),
the orders relay's batch line, catalog's consumer applying the OrderPlaced, catalog's relay
sending the answer, and orders' consumer applying it (the relays and the gateway's access line in
the split topologies), each line naming the process (``service``) that wrote it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.e2e.harness import Shop
from tests.e2e.test_shop import add_book, order_in_state, register, wait_sellable

pytestmark = pytest.mark.e2e

FIELDS = ["time", "level", "logger", "service", "module", "message", "correlation_id", "trace_id"]


def json_lines(log: Path) -> list[dict]:
    """Every line of a log, each of which must be one JSON object with Quire's fields."""
    records = []
    for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
        if not line or line.startswith("=== "):  # the harness's own line before each start (spawn)
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{log.name}:{number} is not JSON: {line[:200]!r}") from None
        assert list(record)[: len(FIELDS)] == FIELDS, f"{log.name}:{number}: {line[:200]}"
        records.append(record)
    return records


def belongs_to(record: dict, correlation_id: str) -> bool:
    return record["correlation_id"] == correlation_id or correlation_id in record.get("correlation_ids", ())


def test_one_checkouts_correlation_id_runs_through_every_log(shop: Shop):
    customer = register(shop, "Logged")
    book = add_book(shop, title="Logged Lines", on_hand=2)
    wait_sellable(shop, customer, book["id"])
    correlation_id = f"e2e-logs-{uuid.uuid4().hex}"

    response = customer.request(
        "POST",
        "/api/orders/",
        json_body={"lines": [{"book_id": book["id"], "quantity": 1}]},
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-Correlation-ID": correlation_id},
    )
    assert response.status == 201, response
    assert {k.lower(): v for k, v in response.headers.items()}.get("x-correlation-id") == correlation_id
    order_in_state(shop, customer, response.json()["id"], "confirmed")

    logs = {log.stem: log for log in shop.logs}

    def log_of(module: str):
        """The log of the process serving ``module``: its own, its group's, or the one shop's."""
        serving = [log for stem, log in logs.items() if module in stem.split("+")]
        return serving[0] if serving else logs["shop"]

    orders_log = log_of("orders")
    catalog_log = log_of("catalog")
    wanted = {
        "orders web": (orders_log, lambda r: r["logger"] == "gunicorn.access" and "POST /api/orders/" in r["message"]),
        "catalog consumer": (
            catalog_log,
            lambda r: r["logger"] == "messaging.delivery" and "stock_reserve_on_order_placed applied" in r["message"],
        ),
        "orders consumer": (
            orders_log,
            lambda r: r["logger"] == "messaging.delivery" and "order_confirm_on_stock_reserved applied" in r["message"],
        ),
    }
    if shop.topology != "one_process":
        # Each relay names the module whose outbox it published: in the grouped process both share one log.
        for module, log in (("orders", orders_log), ("catalog", catalog_log)):
            wanted[f"{module} relay"] = (
                log,
                lambda r, module=module: (
                    r["logger"] == "messaging.kafka.pipeline"
                    and r["module"] == module
                    and r["message"].startswith(f"{module}: published")
                ),
            )
    found: dict[str, dict] = {}

    def every_line_there():
        for name, (log, matches) in wanted.items():
            if name not in found:
                hit = [r for r in json_lines(log) if belongs_to(r, correlation_id) and matches(r)]
                if hit:
                    found[name] = hit[0]
        return len(found) == len(wanted)

    shop.wait_until(every_line_there, message=f"lines of {correlation_id} in {sorted(wanted)}")
    for name, record in found.items():
        print(f"{name}: {json.dumps(record)}")
    if shop.topology != "one_process":
        # The process that wrote each line: its SERVICE, as its modules are grouped.
        for name, record in found.items():
            assert record["service"] == shop.process_of[name.split()[0]], (name, record)
        assert found["orders relay"]["level"] == found["catalog relay"]["level"] == "INFO"
        # The gateway logged the request under the same id (its access log: one JSON object per line).
        access = orders_log.parent / "nginx" / "logs" / "access.log"
        lines = [json.loads(line) for line in access.read_text().splitlines() if line]
        (gateway,) = [line for line in lines if line["correlation_id"] == correlation_id]
        assert gateway["message"] == "POST /api/orders/ HTTP/1.1 201" and gateway["service"] == "gateway"
