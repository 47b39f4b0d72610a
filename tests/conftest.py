import pytest


@pytest.fixture(autouse=True)
def _no_retry_backoff(settings):
    """Handlers retry at once in tests; the backoff itself is unit-tested."""
    settings.MESSAGING = {**settings.MESSAGING, "BACKOFF_SECONDS": 0.0}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """A deliberately slow hash protects production passwords, not test ones."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
