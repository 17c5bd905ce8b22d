"""A zoo of healthy models, each trained a few epochs on a learnable synthetic task.

kerascheck must report nothing at warning or error on any of them, probed with their
own data and with synthetic data; bench/calibrate.py reads the same zoo to calibrate
the rules' thresholds (the numbers in the rules' docstrings).

    python tests/zoo.py OUTDIR   # saves every model and its data (model.keras, model.npz)
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

N = 512


def _schedule(rate=1e-3):
    return keras.optimizers.schedules.ExponentialDecay(rate, decay_steps=1000, decay_rate=0.9)


def _adam(rate=1e-3, **kw):
    return keras.optimizers.Adam(_schedule(rate), **kw)


def _clusters(rng, n, dim, classes):
    centres = rng.normal(0, 2.0, (classes, dim))
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.normal(0, 0.5, (n, dim))
    x = (x - x.mean(0)) / x.std(0)
    return x.astype("float32"), y


def mlp_classifier(rng):
    x, y = _clusters(rng, N, 8, 4)
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(32, activation="relu"),
                          layers.Dense(4, activation="softmax")], name="mlp_classifier")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


def mlp_regressor(rng):
    x = rng.normal(size=(N, 6)).astype("float32")
    y = x @ rng.normal(size=(6, 1)) + 0.1 * np.sin(3 * x[:, :1])
    y = ((y - y.mean()) / y.std()).astype("float32")
    m = keras.Sequential([keras.Input((6,)), layers.Dense(32, activation="tanh"), layers.Dense(1)],
                         name="mlp_regressor")
    m.compile(optimizer=_adam(3e-3), loss="mse")
    return m, x, y


def cnn_rescaling(rng):
    y = rng.integers(0, 3, N)
    x = rng.uniform(0, 80, (N, 16, 16, 1))
    for k in range(3):
        x[y == k, 4 * k:4 * k + 5, :, 0] += 170
    m_in = keras.Input((16, 16, 1))
    h = layers.Rescaling(1 / 255)(m_in)
    h = layers.Conv2D(8, 3, activation="relu", padding="same")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(16, 3, activation="relu", padding="same")(h)
    h = layers.GlobalAveragePooling2D()(h)
    m = keras.Model(m_in, layers.Dense(3, activation="softmax")(h), name="cnn_rescaling")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x.astype("float32"), y


def _sequences(rng, n=N, steps=12, features=4):
    x = rng.normal(size=(n, steps, features)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32").reshape(-1, 1)
    return x, y


def lstm_clipped(rng):
    x, y = _sequences(rng)
    m = keras.Sequential([keras.Input((12, 4)), layers.LSTM(16), layers.Dense(1, activation="sigmoid")],
                         name="lstm_clipped")
    m.compile(optimizer=_adam(3e-3, global_clipnorm=1.0), loss="binary_crossentropy")
    return m, x, y


def gru_clipped(rng):
    x, y = _sequences(rng)
    m = keras.Sequential([keras.Input((12, 4)), layers.GRU(16, return_sequences=True), layers.GRU(8),
                          layers.Dense(1, activation="sigmoid")], name="gru_clipped")
    m.compile(optimizer=keras.optimizers.RMSprop(_schedule(3e-3), clipnorm=1.0), loss="binary_crossentropy")
    return m, x, y


def _tokens(rng, n=N, steps=16, vocab=50):
    x = rng.integers(1, vocab, (n, steps))
    y = np.any(x[:, :4] == 7, axis=1) | np.any(x[:, :4] == 9, axis=1)
    return x.astype("int32"), y.astype("float32").reshape(-1, 1)


def bidirectional(rng):
    x, y = _tokens(rng)
    m = keras.Sequential([keras.Input((16,), dtype="int32"), layers.Embedding(50, 8),
                          layers.Bidirectional(layers.LSTM(8)), layers.Dense(1, activation="sigmoid")],
                         name="bidirectional")
    m.compile(optimizer=_adam(1e-2, global_clipnorm=1.0), loss="binary_crossentropy")
    return m, x, y


def attention(rng):
    x, y = _sequences(rng, steps=8, features=8)
    inp = keras.Input((8, 8))
    h = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    h = layers.LayerNormalization()(h + inp)
    h = layers.GlobalAveragePooling1D()(h)
    m = keras.Model(inp, layers.Dense(1, activation="sigmoid")(h), name="attention")
    m.compile(optimizer=_adam(3e-3), loss="binary_crossentropy")
    return m, x, y


def batchnorm(rng):
    x, y = _clusters(rng, N, 10, 3)
    m = keras.Sequential([keras.Input((10,)), layers.Dense(32), layers.BatchNormalization(), layers.ReLU(),
                          layers.Dense(32), layers.BatchNormalization(), layers.ReLU(),
                          layers.Dense(3, activation="softmax")], name="batchnorm")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


def dropout(rng):
    x, y = _clusters(rng, N, 8, 5)
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"), layers.Dropout(0.3),
                          layers.Dense(32, activation="relu"), layers.Dropout(0.3), layers.Dense(5)],
                         name="dropout")
    m.compile(optimizer=keras.optimizers.SGD(_schedule(5e-2), momentum=0.9),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m, x, y


def embeddings(rng):
    x, y = _tokens(rng, vocab=40)
    x[:, 10:] = 0  # padding, masked
    inp = keras.Input((16,), dtype="int32")
    h = layers.Embedding(40, 8, mask_zero=True)(inp)
    h = layers.GlobalAveragePooling1D()(h)
    h = layers.Dense(16, activation="relu")(h)
    m = keras.Model(inp, layers.Dense(1, activation="sigmoid")(h), name="embeddings")
    m.compile(optimizer=_adam(1e-2), loss="binary_crossentropy")
    return m, x, y


def multi_input(rng):
    a, y = _clusters(rng, N, 6, 3)
    b = (np.eye(3)[y] + rng.normal(0, 0.3, (N, 3))).astype("float32")
    ia, ib = keras.Input((6,), name="features"), keras.Input((3,), name="hints")
    h = layers.Concatenate()([layers.Dense(16, activation="relu")(ia), layers.Dense(8, activation="relu")(ib)])
    m = keras.Model([ia, ib], layers.Dense(3, activation="softmax")(h), name="multi_input")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, [a, b], y


def nested_functional(rng):
    x, y = _clusters(rng, N, 8, 4)
    block_in = keras.Input((8,))
    block = keras.Model(block_in, layers.Dense(16, activation="relu")(layers.Dense(16, activation="relu")(block_in)),
                        name="block")
    inp = keras.Input((8,))
    m = keras.Model(inp, layers.Dense(4, activation="softmax")(block(inp)), name="nested_functional")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


@keras.saving.register_keras_serializable(package="zoo")
class SubclassedMLP(keras.Model):
    def __init__(self, units=32, classes=4, **kwargs):
        super().__init__(**kwargs)
        self.units, self.classes = units, classes
        self.hidden = [layers.Dense(units, activation="relu") for _ in range(2)]
        self.head = layers.Dense(classes, activation="softmax")

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "classes": self.classes}


def subclassed(rng):
    x, y = _clusters(rng, N, 8, 4)
    m = SubclassedMLP(name="subclassed")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


def segmenter(rng):
    """A class per pixel (a dense output): memorised per pixel, not per image."""
    x = rng.random((N, 12, 12, 3)).astype("float32")
    y = np.argmax(x, axis=-1)
    m_in = keras.Input((12, 12, 3))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(m_in)
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    m = keras.Model(m_in, layers.Conv2D(3, 1, activation="softmax")(h), name="segmenter")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


def token_tagger(rng):
    """A class per token (a sequence model's dense output), with padding."""
    x = rng.integers(1, 40, (N, 12))
    x[:, 9:] = 0
    y = (x % 3).astype("int64")
    m_in = keras.Input((12,), dtype="int64")
    h = layers.Embedding(40, 16)(m_in)
    h = layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    m = keras.Model(m_in, layers.Dense(3, activation="softmax")(h), name="token_tagger")
    m.compile(optimizer=_adam(3e-3), loss="sparse_categorical_crossentropy")
    return m, x, y


class FineTuned:
    """Pretrained at 1e-3, then compiled at KerasHub's fine-tuning rate 2e-5 and fine-tuned (build() fits it):
    a low rate on trained weights is what fine-tuning is, and nothing to report."""

    __name__ = "fine_tuned"

    def __call__(self, rng):
        x, y = _clusters(rng, N, 8, 4)
        m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"), layers.Dense(4)],
                             name="fine_tuned")
        m.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        m.fit(x, y, epochs=8, batch_size=32, verbose=0)
        m.compile(optimizer=keras.optimizers.Adam(2e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m, x, y


fine_tuned = FineTuned()
BUILDERS = {f.__name__: f for f in (mlp_classifier, mlp_regressor, cnn_rescaling, lstm_clipped, gru_clipped,
                                     bidirectional, attention, batchnorm, dropout, embeddings, multi_input,
                                     nested_functional, subclassed, segmenter, token_tagger, fine_tuned)}


def build(name: str, epochs: int = 4):
    """(trained model, x, y) for a zoo entry, the same on every call; the fine-tuned one is fine-tuned
    for 8 epochs (128 steps, past what cannot-overfit calls untrained weights)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model, x, y = BUILDERS[name](rng)
    model.fit(x, y, epochs=8 if name == "fine_tuned" else epochs, batch_size=32, verbose=0)
    return model, x, y


def save(name: str, directory: str) -> tuple[str, str]:
    """Save a trained zoo model and its --data file; returns (model path, data path)."""
    model, x, y = build(name)
    path = os.path.join(directory, f"{name}.keras")
    model.save(path)
    arrays = {"y": y}
    if isinstance(x, list):
        arrays.update({f"x_{i}": a for i, a in enumerate(x)})
    else:
        arrays["x"] = x
    data = os.path.join(directory, f"{name}.npz")
    np.savez(data, **arrays)
    return path, data


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    for entry in BUILDERS:
        print(*save(entry, sys.argv[1]))
