import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    # Run the collector inside each test, so that a leaked socket's
    # ResourceWarning is reported against the test that leaked it.
    yield
    gc.collect()
