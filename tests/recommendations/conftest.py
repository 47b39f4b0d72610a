import pytest

from recommendations import store


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Each test starts like a new process: no model cached in memory."""
    store.reset()
    yield
    store.reset()
