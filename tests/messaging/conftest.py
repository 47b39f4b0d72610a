import pytest

from messaging.kafka.producers import RELAY_CLIENTS
from tests.messaging.probes import probe_handler  # noqa: F401  (fixture)


@pytest.fixture(params=RELAY_CLIENTS)
def relay_client(request, settings) -> str:
    """Each of the relay's Kafka clients in turn (MESSAGING_RELAY_CLIENT), for the tests that exercise its producer."""
    settings.MESSAGING = {**settings.MESSAGING, "RELAY_CLIENT": request.param}
    return request.param
