"""--data takes what Model.fit takes, and synthetic data respects what the model's first layers expect.

Each case is a model written the way the keras-io examples write it (bench/corpus has the examples
themselves): labels (N,) for an output (N, 1); scalar dict inputs, strings included; a four-example
XOR data set; labels only for the output that has a loss; sequences too short for strided convolutions;
a model whose code prints while it loads.
"""
import os

import keras
import numpy as np
from keras import layers

from helpers import json_report, kerascheck

PROBE_RULES = "nan-in-training,cannot-overfit,exploding-gradients,vanishing-gradients,batch-dependence,dead-units"


def _json(*args):
    proc = kerascheck(*args, "--format", "json", "--no-html", "--fail-on", "error")
    return proc, (json_report(proc.stdout)["models"][0] if proc.stdout.strip() else None)


def _probe_skips(model) -> dict:
    return {s["rule"]: s["reason"] for s in model["skipped"] if s["rule"] in PROBE_RULES.split(",")}


def test_labels_without_the_last_axis_of_a_one_unit_output(tmp_path):
    """text_classification_from_scratch: labels (N,) int for Dense(1, sigmoid), as fit() trains on them."""
    inp = keras.Input((6,))
    m = keras.Model(inp, layers.Dense(1, activation="sigmoid")(layers.Dense(16, activation="relu")(inp)))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype("int64"))
    proc, model = _json(str(tmp_path / "m.keras"), "--data", str(tmp_path / "d.npz"), "--select", PROBE_RULES)
    assert proc.returncode == 0, proc.stderr
    assert _probe_skips(model) == {}, model["skipped"]
    runs = {r["probe"]: r for r in model["probes"]["runs"]}
    assert runs["train"]["steps_done"] == 100 and not model["probes"]["failed"]


def test_scalar_dict_inputs_with_a_string_column(tmp_path):
    """structured_data_classification_from_scratch: Input((1,)) per column, fed (N,) columns; a string lookup."""
    inputs = {"age": keras.Input((1,), name="age"), "thal": keras.Input((1,), name="thal", dtype="string")}
    norm = layers.Normalization()
    norm.adapt(np.linspace(29, 77, 50).reshape(-1, 1))
    lookup = layers.StringLookup(vocabulary=["fixed", "normal", "reversible"], output_mode="one_hot")
    x = layers.concatenate([norm(inputs["age"]), lookup(inputs["thal"])])
    m = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(layers.Dense(8, activation="relu")(x)))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_age=rng.uniform(29, 77, 64).astype("float32"),
             x_thal=rng.choice(np.array(["fixed", "normal", "reversible"]), 64), y=rng.integers(0, 2, 64))
    for extra in (["--data", str(tmp_path / "d.npz")], []):
        proc, model = _json(str(tmp_path / "m.keras"), "--select", PROBE_RULES, *extra)
        assert proc.returncode == 0, proc.stderr
        assert _probe_skips(model) == {}, model["skipped"]
    # Without --data: ages drawn on the Normalization's scale, strings from the lookup's vocabulary.
    drawn = " ".join(model["probes"]["data"]["inputs"])
    assert "age: normal values with the mean (53" in drawn and "thal: strings from a vocabulary of 3" in drawn


def test_four_examples_are_repeated_not_refused(tmp_path):
    """An XOR network: fit() trains on its four examples; the probes repeat them."""
    m = keras.Sequential([keras.Input((2,)), layers.Dense(8, activation="tanh"), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    m.save(tmp_path / "xor.keras")
    np.savez(tmp_path / "xor.npz", x=np.array([[0, 0], [0, 1], [1, 0], [1, 1]], "float32"),
             y=np.array([0, 1, 1, 0], "float32"))
    proc, model = _json(str(tmp_path / "xor.keras"), "--data", str(tmp_path / "xor.npz"), "--select", PROBE_RULES)
    assert proc.returncode == 0, proc.stderr
    assert "the 4 examples of" in model["probes"]["data"]["description"] and "repeated to 12" in \
        model["probes"]["data"]["description"]
    assert "cannot-overfit" not in {f["rule"] for f in model["findings"]}


def test_labels_only_for_the_output_that_has_a_loss(tmp_path):
    """text_generation_with_miniature_gpt: loss=[loss_fn, None]; fit() gets labels for the first output only."""
    inp = keras.Input((10,), dtype="int32")
    hidden = layers.Embedding(50, 8)(inp)
    logits = layers.Dense(50, name="logits")(hidden)
    m = keras.Model(inp, [logits, hidden])
    m.compile(optimizer="adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), None])
    m.save(tmp_path / "lm.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "lm.npz", x=rng.integers(0, 50, (64, 10)), y_logits=rng.integers(0, 50, (64, 10)))
    proc, model = _json(str(tmp_path / "lm.keras"), "--data", str(tmp_path / "lm.npz"), "--select",
                        PROBE_RULES + ",unscaled-targets")
    assert proc.returncode == 0, proc.stderr
    assert _probe_skips(model) == {} and "unscaled-targets" not in {s["rule"] for s in model["skipped"]}
    assert not model["probes"]["data"]["synthetic_labels"]


def test_open_sequence_length_long_enough_for_strided_convolutions(tmp_path):
    """Variable-length ids into two Conv1D(7, strides=3): a length of 8 is too short, so a longer one is used."""
    inp = keras.Input((None,), dtype="int64")
    x = layers.Embedding(100, 8)(inp)
    x = layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    x = layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    m = keras.Model(inp, layers.Dense(1, activation="sigmoid")(layers.GlobalMaxPooling1D()(x)))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(tmp_path / "conv.keras")
    proc, model = _json(str(tmp_path / "conv.keras"), "--select", PROBE_RULES)
    assert proc.returncode == 0, proc.stderr
    assert _probe_skips(model) == {}, model["skipped"]


def test_what_the_models_code_prints_stays_out_of_the_report(tmp_path):
    """semisupervised_simclr prints summary() in __init__: --format json must still parse."""
    code = tmp_path / "noisy.py"
    code.write_text(
        "import keras\n"
        "@keras.saving.register_keras_serializable(package='kctests_noisy')\n"
        "class Loud(keras.layers.Layer):\n"
        "    def __init__(self, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        print('Model: summary table printed by the user code')\n"
        "    def call(self, x):\n"
        "        print('called')\n"
        "        return x * 2.0\n")
    from helpers import import_file

    module = import_file(str(code), "noisy_for_save")
    inp = keras.Input((3,))
    m = keras.Model(inp, layers.Dense(1)(module.Loud()(inp)))
    m.compile(optimizer="adam", loss="mse")
    m.save(tmp_path / "noisy.keras")
    proc = kerascheck(str(tmp_path / "noisy.keras"), "--custom-objects", str(code), "--format", "json",
                      "--select", "cannot-overfit")
    report = json_report(proc.stdout)
    assert report["models"][0]["path"].endswith("noisy.keras") and "summary table" not in proc.stdout
    loud = kerascheck(str(tmp_path / "noisy.keras"), "--custom-objects", str(code), "--format", "json",
                      "--select", "cannot-overfit", "--verbose")
    json_report(loud.stdout)
    assert "summary table printed by the user code" in loud.stderr


def test_inputs_renamed_clone_say_the_preprocessing_is_elsewhere(tmp_path):
    """structured_data_classification_with_feature_space: the training model starts from FeatureSpace's
    encoded features, so Keras renames its input keras_tensor_<n>CLONE."""
    space = keras.utils.FeatureSpace(features={"age": "float_normalized", "kind": "integer_categorical"},
                                     output_mode="concat")
    import tensorflow as tf

    space.adapt(tf.data.Dataset.from_tensor_slices({"age": np.linspace(20, 80, 16).astype("float32"),
                                                    "kind": np.arange(16) % 3}).batch(4))
    encoded = space.get_encoded_features()
    m = keras.Model(encoded, layers.Dense(1, activation="sigmoid")(encoded))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(tmp_path / "training.keras")
    proc, model = _json(str(tmp_path / "training.keras"), "--static")
    (note,) = model["notes"]
    assert note.startswith("input 'keras_tensor") and "CLONE' was a tensor in the middle of another model" in note
