import os

import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(1e-5), loss="mse")
    return m


def one_outlier(tmp):
    # 255 ordinary examples and one whose features are 100x larger: every batch that
    # holds it has a gradient hundreds of times the usual one.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype("float32")
    x[17] *= 100.0
    path = os.path.join(str(tmp), "outlier.npz")
    np.savez(path, x=x, y=rng.standard_normal((256, 1)).astype("float32"))
    return path


def tiny_first_layer(tmp, fmt):
    # The first layer's outputs are ~1e-7, so the last layer's gradients are tiny while the
    # first layer's are not: per parameter, gradients grow by orders of magnitude towards the input.
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(256, activation="relu", name="first", use_bias=False,
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=1e-7, seed=2)),
                          layers.Dense(1, name="last")])
    m.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse")
    return m


def deep(init):
    """Ten ReLU layers with no normalisation, the way early deep MLPs were written."""
    def build(tmp, fmt):
        m = keras.Sequential([keras.Input((32,))]
                             + [layers.Dense(64, activation="relu", kernel_initializer=init, name=f"hidden{i}")
                                for i in range(10)]
                             + [layers.Dense(10, activation="softmax", name="out")])
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return m
    return build


CASES = [
    # std 0.5 on a fan-in of 64 is 2.8x He's scale: the signal grows ~2.8x per layer. Adam keeps the
    # loss finite, so only the first step shows it.
    bad("amplifying_init", deep(keras.initializers.RandomNormal(stddev=0.5, seed=3)),
        Expect("out", "warning", r"^Over the first 5 probe steps, from the weights the file holds, the kernel gradient of 'out' is "
                                 r"[\d.e+]+x the size of its kernel .*; 11 of 11 weighted layers are above 100x",
               {"kind": "init"})),
    bad("tiny_first_layer", tiny_first_layer,
        Expect("first", "warning", r"RMS gradient of the first weighted layer 'first' is [\d.e+]+x that of the last, "
                                   r"'last'", {"ratio_first_last": (1e3, 1e12)}),
        formats=("keras", "h5")),
    bad("one_outlier", mlp,
        Expect(None, "warning", r"^1\d% of probe steps had a global gradient norm that jumped over 10x the median of the "
                              r"steps before it \(largest jump [\d.]+x\)",
               {"spike_share": (0.1, 0.2), "synthetic_data": False}),
        data=one_outlier),
]
