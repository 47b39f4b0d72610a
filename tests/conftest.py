import pytest


@pytest.fixture(autouse=True)
def _no_retry_backoff(settings):
    """Handlers retry at once in tests; the backoff itself is unit-tested."""
    settings.MESSAGING = {**settings.MESSAGING, "BACKOFF_SECONDS": 0.0}
