import pytest


@pytest.fixture(autouse=True)
def _no_retry_backoff(settings):
    """Handlers retry at once in tests; the backoff itself is unit-tested."""
    settings.MESSAGING = {**settings.MESSAGING, "BACKOFF_SECONDS": 0.0}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """A deliberately slow hash protects production passwords, not test ones."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(settings):
    """Each test counts its attempts afresh: the shared throttle store outlives a transactional test."""
    import uuid

    settings.THROTTLE_KEY_PREFIX = f"test-{uuid.uuid4().hex}:"
