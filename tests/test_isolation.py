"""Models that hang or blow up memory cost one file (exit 2), not the run."""
import os
import textwrap

import keras
import pytest

from helpers import ROOT, json_report, kerascheck

HEALTHY = os.path.join(ROOT, "examples", "healthy.keras")

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


def test_a_hanging_model_times_out_and_the_next_file_is_checked(hostile):
    paths, code = hostile
    proc = kerascheck("--format", "json", "--custom-objects", code, "--timeout", "12", "--select", "KC6",
                      paths["Sleeper"], HEALTHY)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"kerascheck: error: {paths['Sleeper']}: checking it took longer than "
                                   "--timeout 12 s and was stopped")
    sleeper, healthy = json_report(proc.stdout)["models"]
    assert sleeper["errors"] and healthy["errors"] == [] and healthy["findings"] == []


def test_a_model_that_eats_memory_is_stopped_at_the_limit(hostile):
    paths, code = hostile
    proc = kerascheck("--format", "json", "--custom-objects", code, "--max-memory", "2500", "--select", "KC6",
                      paths["Hoarder"], HEALTHY, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"kerascheck: error: {paths['Hoarder']}: checking it used more than 2500 MiB "
                                   "of memory (--max-memory) and was stopped")
    assert json_report(proc.stdout)["models"][1]["errors"] == []


def test_parallel_jobs_give_the_same_report():
    examples = [os.path.join(ROOT, "examples", name) for name in
                ("double_softmax.keras", "legacy_logits.h5")]

    def run(*args):
        models = json_report(kerascheck("--format", "json", "--select", "KC1,KC6,KC4", *args, *examples).stdout)
        for m in models["models"]:
            for f in m["findings"]:
                f["evidence"].pop("probe_seconds", None)
            if m.get("probes"):
                m["probes"].pop("seconds")  # the one figure a clock gives; verdicts never read it
        return models

    assert run("--jobs", "2") == run("--jobs", "1")
