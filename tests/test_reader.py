"""The reader's weights must equal what Keras itself loads, for every layer of a zoo of models."""
import glob
import os

import keras
import numpy as np
import pytest
from keras import layers

from kerascheck.formats import open_spec

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "legacy")


@keras.saving.register_keras_serializable(package="zoo")
class Gate(layers.Layer):
    """A custom layer with its own weight and two sub-layers."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.proj = layers.Dense(units)
        self.gate = layers.Dense(units, activation="sigmoid")

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(self.units,), initializer="random_normal", name="scale")

    def call(self, x):
        return self.proj(x) * self.gate(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def sequential():
    return keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"), layers.Dropout(0.1),
                             layers.Dense(3)])


def functional_nested():
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, layers.Dense(8, activation="tanh")(layers.Dense(8)(inner_in)), name="inner")
    mid_in = keras.Input((8,))
    mid = keras.Model(mid_in, inner(layers.Dense(8)(mid_in)), name="mid")
    inp = keras.Input((6,))
    x = layers.Dense(8)(inp)
    return keras.Model(inp, layers.Dense(2)(mid(x)))


def recurrent():
    inp = keras.Input((7, 5))
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(inp)
    x = layers.GRU(3, return_sequences=True)(x)
    x = layers.SimpleRNN(2)(x)
    return keras.Model(inp, layers.Dense(1)(x))


def batchnorm_conv():
    inp = keras.Input((10, 10, 3))
    x = layers.Conv2D(4, 3)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.BatchNormalization(center=False)(x)
    x = layers.SeparableConv2D(4, 3)(x)
    x = layers.DepthwiseConv2D(3, use_bias=False)(x)
    return keras.Model(inp, layers.Dense(2)(layers.Flatten()(x)))


def custom_with_sublayers():
    inp = keras.Input((5,))
    x = Gate(4, name="gate")(inp)
    return keras.Model(inp, layers.Dense(1)(x))


def attention():
    inp = keras.Input((6, 8))
    x = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    x = layers.LayerNormalization()(x + inp)
    return keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling1D()(x)))


ZOO = {f.__name__: f for f in (sequential, functional_nested, recurrent, batchnorm_conv, custom_with_sublayers,
                               attention)}


def _leaf_layers(model, prefix=""):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def _randomise(model):
    # Distinct values everywhere, so a weight read from the wrong place cannot pass.
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_reader_weights_equal_keras_get_weights(name, fmt, tmp_path):
    if name == "attention" and fmt == "h5":
        pytest.skip("Keras 3.15's legacy .h5 loader cannot load MultiHeadAttention itself")
    model = ZOO[name]()
    _randomise(model)
    model.compile(optimizer="adam", loss="mse")
    path = str(tmp_path / f"{name}.{fmt}")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"Gate": Gate}, compile=False)
    with open_spec(path) as spec:
        compared = 0
        for qualname, layer in _leaf_layers(loaded):
            got = spec.layer(qualname)
            assert got is not None, f"reader lost layer {qualname}"
            expected = layer.get_weights()
            assert len(got.weights) == len(expected), qualname
            for ref, want in zip(got.weights, expected):
                assert ref.shape == want.shape, (qualname, ref.path)
                np.testing.assert_array_equal(ref.read(), want, err_msg=f"{qualname} {ref.path}")
                compared += 1
        assert compared == len(loaded.get_weights())
        assert spec.param_count == loaded.count_params()


def test_reader_names_weights_by_role(tmp_path):
    path = str(tmp_path / "bn.keras")
    batchnorm_conv().save(path)
    with open_spec(path) as spec:
        roles = {l.class_name: [w.name for w in l.weights] for l in spec.layers if l.weights}
    assert roles["Conv2D"] == ["kernel", "bias"]
    assert roles["SeparableConv2D"] == ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert roles["DepthwiseConv2D"] == ["depthwise_kernel"]
    path = str(tmp_path / "mha.keras")
    attention().save(path)
    with open_spec(path) as spec:
        mha = next(l for l in spec.layers if l.class_name == "MultiHeadAttention")
        assert [w.name for w in mha.weights] == ["kernel", "bias"] * 4
        assert [w.path.split("/")[1] for w in mha.weights[::2]] == ["query_dense", "key_dense", "value_dense",
                                                                     "output_dense"]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(FIXTURES, "*.h5")) + glob.glob(os.path.join(FIXTURES, "*.keras"))),
                         ids=os.path.basename)
def test_legacy_files_match_the_library_that_wrote_them(path):
    """tf-keras .h5 and Keras 3.3 .keras (weight groups without layer names), made by make_legacy.py."""
    expected = np.load(path.rsplit(".", 1)[0] + ".expected.npz")
    with open_spec(path) as spec:
        assert spec.keras_version.startswith("2.") if path.endswith(".h5") else spec.keras_version == "3.3.3"
        for key in expected.files:
            qualname, index = key.split("::")
            np.testing.assert_array_equal(spec.layer(qualname).weights[int(index)].read(), expected[key],
                                          err_msg=key)
        assert sum(len(l.weights) for l in spec.layers) == len(expected.files)


def test_spec_describes_inputs_outputs_and_compile(tmp_path):
    inp = keras.Input((5, 3), name="seq")
    x = layers.LSTM(4, name="lstm")(inp)
    out = layers.Dense(2, activation="softmax", name="probs")(x)
    model = keras.Model(inp, out)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=0.5),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    for fmt in ("keras", "h5"):
        path = str(tmp_path / f"m.{fmt}")
        model.save(path)
        with open_spec(path) as spec:
            assert spec.inputs[0].name == "seq" and spec.inputs[0].shape == (None, 5, 3)
            assert spec.outputs == ("probs",)
            assert spec.layer("probs").inbound == ("lstm",)
            opt = spec.compile.optimizer
            assert opt.class_name == "Adam" and opt.clipnorm == 0.5 and opt.learning_rate is None
            assert opt.schedule["class_name"] == "ExponentialDecay"
            assert spec.compile.losses[0].name == "categorical_crossentropy"
            assert spec.compile.losses[0].from_logits is True
            assert spec.keras_version == keras.__version__


def test_a_read_that_never_ends_is_stopped_with_one_line():
    """HDF5's C library can loop forever reading a corrupt text attribute (found by fuzzing): the
    reader does that read in a child process it can stop, and says so in one line. Run where the
    spec tier runs, in a process that has not imported TensorFlow."""
    import subprocess
    import sys

    script = (
        "import time\n"
        "from kerascheck.errors import InputError\n"
        "from kerascheck.formats.hdf5 import bounded\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    bounded(lambda: time.sleep(60) or b'', 0.5, 'attribute model_config could not be read within 0.5 s')\n"
        "except InputError as exc:\n"
        "    print('stopped:', exc, round(time.monotonic() - start, 1))\n"
        "assert bounded(lambda: b'{}' * 100_000, 5, 'unused') == b'{}' * 100_000\n"
        "def refuse():\n"
        "    raise InputError('attribute model_config is not text')\n"
        "try:\n"
        "    bounded(refuse, 5, 'unused')\n"
        "except InputError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stopped, refused = proc.stdout.strip().splitlines()
    assert stopped.startswith("stopped: attribute model_config could not be read within 0.5 s")
    assert float(stopped.split()[-1]) < 5
    assert refused == "refused: attribute model_config is not text"
