import os
import textwrap

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


HOSTILE_LAYERS = textwrap.dedent('''
    import time

    import keras
    import numpy as np

    HOARD = []


    @keras.saving.register_keras_serializable(package="kchostile")
    class Sleeper(keras.layers.Layer):
        def call(self, x):
            time.sleep(3600)  # runs when the probes trace the model
            return x


    @keras.saving.register_keras_serializable(package="kchostile")
    class Hoarder(keras.layers.Layer):
        def call(self, x):
            for _ in range(40):
                HOARD.append(np.ones(2**27))  # 1 GiB each, touched, never released
            return x
''')


@pytest.fixture()
def hostile(tmp_path):
    """(paths of a model whose custom layer hangs and of one whose layer eats memory, the file of
    that code for --custom-objects)."""
    import keras

    code = tmp_path / "kc_hostile_layers.py"
    code.write_text(HOSTILE_LAYERS)
    # Save models with harmless stand-ins registered under the same names; the hostile
    # classes arrive only in kerascheck's worker, through --custom-objects.
    paths = {}
    for name in ("Sleeper", "Hoarder"):
        cls = type(name, (keras.layers.Layer,), {"call": lambda self, x: x})
        keras.saving.register_keras_serializable(package="kchostile", name=name)(cls)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), cls(name=name.lower()),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        paths[name] = str(tmp_path / f"{name.lower()}.keras")
        model.save(paths[name])
    return paths, str(code)
