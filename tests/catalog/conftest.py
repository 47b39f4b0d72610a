import pytest

from catalog import selectors


@pytest.fixture(autouse=True)
def _statements_compiled_anew():
    """Each test compiles the catalog's statements itself: whether a shape is compiled must not depend on which test
    ran first (catalog/statements.py)."""
    selectors.statements.clear()
    yield
    selectors.statements.clear()
