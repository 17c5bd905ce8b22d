import keras
from keras import layers

from helpers import Expect, bad, pixels_npz


def raw_conv(tmp, fmt):
    inp = keras.Input((32, 32, 3), name="pixels")
    x = layers.ZeroPadding2D(1)(inp)
    x = layers.Conv2D(4, 3, name="conv")(x)
    m = keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling2D()(x)))
    m.compile(optimizer="adam", loss="mse")
    return m


def uint8_vector(tmp, fmt):
    inp = keras.Input((16,), dtype="uint8", name="bytes")
    m = keras.Model(inp, layers.Dense(1, name="dense")(inp))
    m.compile(optimizer="adam", loss="mse")
    return m


def nested_backbone(tmp, fmt):
    b_in = keras.Input((16, 16, 1))
    backbone = keras.Model(b_in, layers.Conv2D(4, 3, name="stem")(b_in), name="backbone")
    inp = keras.Input((16, 16, 1), name="gray")
    m = keras.Model(inp, layers.Dense(1)(layers.Flatten()(backbone(inp))))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    bad("raw_conv", raw_conv,
        Expect("conv", "info", r"Input 'pixels' looks like images \(shape \(None, 32, 32, 3\), float32\)",
               {"first_weighted": "conv"}),
        formats=("keras", "h5")),
    bad("uint8_vector", uint8_vector, Expect("dense", "info", r"Input 'bytes'.*uint8")),
    bad("nested_backbone", nested_backbone, Expect("backbone/stem", "info", r"reaches the weighted layer 'backbone/stem'")),
]


def _mixed_scales(tmp):
    import os

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 10)).astype("float32")
    x[:, 3] *= 5000.0  # one feature in its raw unit (say, dollars)
    path = os.path.join(str(tmp), "mixed.npz")
    np.savez(path, x=x, y=rng.standard_normal((128, 1)))
    return path


def tabular(tmp, fmt):
    inp = keras.Input((10,), name="features")
    m = keras.Model(inp, layers.Dense(1, name="dense")(layers.Dense(8, name="first")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES += [
    bad("raw_pixels_measured", raw_conv,
        Expect("conv", "warning", r"Input 'pixels' reaches the weighted layer 'conv' with raw pixel values from 0 to 255"
                                  r".*measured at the output of 'zero_padding2d'", {"integer_valued": True}),
        data=pixels_npz),
    bad("mixed_feature_scales", tabular,
        Expect("first", "warning", r"feature scales that differ \d+x \(measured at the raw input over 128 examples",
               {"scale_ratio": (1000, 20000)}),
        data=_mixed_scales),
]
