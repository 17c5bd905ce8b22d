import keras
from keras import layers

from helpers import good, pixels_npz


def _conv_after(first):
    inp = keras.Input((32, 32, 3))
    x = first(inp)
    m = keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(x))))
    m.compile(optimizer="adam", loss="mse")
    return m


def tabular(tmp, fmt):
    inp = keras.Input((10,))
    m = keras.Model(inp, layers.Dense(1)(inp))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    good("rescaling_first", lambda t, f: _conv_after(layers.Rescaling(1 / 255)), formats=("keras", "h5")),
    good("normalization_first", lambda t, f: _conv_after(layers.Normalization(mean=0.5, variance=0.1))),
    good("tabular_input", tabular),
]


def _prescaled(tmp):
    import os

    import numpy as np

    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "prescaled.npz")
    np.savez(path, x=rng.uniform(0, 1, (64, 32, 32, 3)).astype("float32"), y=rng.standard_normal((64, 1)))
    return path


def raw_conv_no_rescaling(tmp, fmt):
    inp = keras.Input((32, 32, 3))
    m = keras.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inp))))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES += [
    # Pixels 0..255 measured after the model's own Rescaling(1/255).
    good("rescaled_inside_measured", lambda t, f: _conv_after(layers.Rescaling(1 / 255)), data=pixels_npz),
    # No scaling layer, but the data arrives scaled: the measurement clears the structural hint.
    good("scaled_outside_measured", raw_conv_no_rescaling, data=_prescaled),
]
