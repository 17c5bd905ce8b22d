import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def _compiled(model):
    model.compile(optimizer="adam", loss="mse")
    return model


def zero_kernel(tmp, fmt):
    return _compiled(keras.Sequential([keras.Input((32,)), layers.Dense(16, kernel_initializer="zeros",
                                                                         name="hidden"), layers.Dense(1)]))


def constant_conv_kernel(tmp, fmt):
    return _compiled(keras.Sequential([
        keras.Input((8, 8, 3)),
        layers.Conv2D(4, 3, kernel_initializer=keras.initializers.Constant(0.5), name="conv"),
        layers.Flatten(), layers.Dense(1)]))


def identical_units(tmp, fmt):
    m = _compiled(keras.Sequential([keras.Input((32,)), layers.Dense(16, name="hidden"), layers.Dense(1)]))
    kernel, bias = m.get_layer("hidden").get_weights()
    kernel[:, 8:] = kernel[:, :8]  # units 8..15 copy units 0..7
    m.get_layer("hidden").set_weights([kernel, bias])
    return m


def huge_std(tmp, fmt):
    init = keras.initializers.RandomNormal(stddev=5.0, seed=1)
    return _compiled(keras.Sequential([keras.Input((64,)), layers.Dense(64, kernel_initializer=init,
                                                                         name="hidden"), layers.Dense(1)]))


def tiny_std(tmp, fmt):
    init = keras.initializers.RandomNormal(stddev=1e-4, seed=1)
    return _compiled(keras.Sequential([keras.Input((64,)), layers.Dense(64, kernel_initializer=init,
                                                                         name="hidden"), layers.Dense(1)]))


def nan_in_kernel(tmp, fmt):
    m = _compiled(keras.Sequential([keras.Input((8,)), layers.Dense(4, name="hidden"), layers.Dense(1)]))
    kernel, bias = m.get_layer("hidden").get_weights()
    kernel[0, :3] = np.nan
    kernel[1, 0] = np.inf
    m.get_layer("hidden").set_weights([kernel, bias])
    return m


def batchnorm_broken(tmp, fmt):
    m = _compiled(keras.Sequential([keras.Input((8,)), layers.Dense(8), layers.BatchNormalization(name="bn"),
                                    layers.BatchNormalization(name="bn_zero_gamma"), layers.Dense(1)]))
    gamma, beta, mean, var = m.get_layer("bn").get_weights()
    var[:2] = -0.5
    m.get_layer("bn").set_weights([gamma, beta, mean, var])
    gamma, beta, mean, var = m.get_layer("bn_zero_gamma").get_weights()
    m.get_layer("bn_zero_gamma").set_weights([np.zeros_like(gamma), beta, mean, var])
    return m


def batchnorm_tiny_variance(tmp, fmt):
    m = _compiled(keras.Sequential([keras.Input((8,)), layers.Dense(8), layers.BatchNormalization(name="bn"),
                                    layers.Dense(1)]))
    gamma, beta, mean, var = m.get_layer("bn").get_weights()
    var[:3] = 0.0
    m.get_layer("bn").set_weights([gamma, beta, mean, var])
    return m


def extreme_bias(tmp, fmt):
    return _compiled(keras.Sequential([keras.Input((8,)), layers.Dense(
        4, bias_initializer=keras.initializers.Constant(1000.0), name="hidden"), layers.Dense(1)]))


CASES = [
    bad("zero_kernel", zero_kernel,
        Expect("hidden", "error", r"Weight 'kernel' of layer 'hidden' \(32x16\) is zero everywhere"),
        formats=("keras", "h5")),
    bad("constant_conv_kernel", constant_conv_kernel,
        Expect("conv", "error", r"is the constant 0\.5 everywhere")),
    bad("identical_units", identical_units,
        Expect("hidden", "error", r"^16 of 16 units in layer 'hidden' have incoming weights",
               {"duplicate_units": 16})),
    bad("huge_std", huge_std,
        Expect("hidden", "warning", r"standard deviation 5\.\d+, 2\dx what He initialisation gives for fan-in 64",
               {"ratio": (20, 35)}),
        formats=("keras", "h5")),
    bad("tiny_std", tiny_std,
        Expect("hidden", "warning", r"standard deviation 0\.000\d+, \d+x smaller than Glorot",
               {"ratio": (1e-4, 1e-2)})),
    bad("nan_in_kernel", nan_in_kernel,
        Expect("hidden", "error", r"holds 4 NaN/Inf values out of 32", {"nonfinite": 4}),
        formats=("keras", "h5")),
    bad("batchnorm_broken", batchnorm_broken,
        Expect("bn", "error", r"negative moving variance in 2 of 8 channels", {"negative_channels": 2}),
        Expect("bn_zero_gamma", "warning", r"gamma\| below 0\.001 in 8 of 8 channels")),
    bad("batchnorm_tiny_variance", batchnorm_tiny_variance,
        Expect("bn", "warning", r"moving variance below 1e-06 in 3 of 8 channels", {"tiny_channels": 3})),
    bad("extreme_bias", extreme_bias,
        Expect("hidden", "warning", r"Bias of layer 'hidden' reaches 1000")),
]


def adam_rate_far_too_high(tmp, fmt):
    return _rate_model(keras.optimizers.Adam(0.3))


def sgd_rate_far_too_low(tmp, fmt):
    return _rate_model(keras.optimizers.SGD(1e-7))


def _rate_model(optimizer):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", name="hidden"),
                          layers.Dense(1, name="out")])
    m.compile(optimizer=optimizer, loss="mse")
    return m


CASES += [
    # Both layers of one cause are one finding naming each with its number.
    bad("adam_rate_far_too_high", adam_rate_far_too_high,
        Expect("hidden", "warning", r"^2 of 2 layers are thrown around: .*\('hidden' 0\.\d+, 'out' [\d.]+; median "
                                    r"over the first steps at learning rate 0\.3\)",
               {"median_first_steps": (0.1, 10.0), "layers": ["hidden", "out"]})),
    bad("sgd_rate_far_too_low", sgd_rate_far_too_low,
        Expect("hidden", "warning", r"^2 of 2 layers barely learn: .*\('hidden' [\d.e-]+, 'out' [\d.e-]+;",
               {"median_first_steps": (0, 1e-5), "layers": ["hidden", "out"]})),
]
