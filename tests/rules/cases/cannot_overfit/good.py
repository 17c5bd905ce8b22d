import keras
from keras import layers

from helpers import good


def classifier(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"),
                          layers.Dense(5, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return m


def regression(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="tanh"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return m


def binary_logits(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(64, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return m


def segmenter(tmp, fmt):
    """A class per pixel: judged per pixel (98% of them), not as one label per image."""
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inp)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    m = keras.Model(inp, layers.Conv2D(3, 1, activation="softmax")(x))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def segmentation_data(tmp):
    import os

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3)).astype("float32")
    y = np.argmax(x, axis=-1)  # the brightest channel, which a per-pixel model learns...
    flip = rng.random(y.shape) < 0.01  # ...except 1% of pixels labelled at random, as real masks have wrong borders
    y[flip] = rng.integers(0, 3, int(flip.sum()))
    path = os.path.join(str(tmp), "seg.npz")
    np.savez(path, x=x, y=y)
    return path


CASES = [
    good("classifier", classifier, formats=("keras", "h5")),
    good("regression", regression),
    good("binary_logits", binary_logits),
    good("segmenter", segmenter, data=segmentation_data),
]
