import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Keras's own habit: a fresh session per test, so layer names do not drift between tests."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
