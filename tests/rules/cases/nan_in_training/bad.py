import keras
from keras import layers, ops

from helpers import ANY_LAYER, Expect, bad


@keras.saving.register_keras_serializable(package="kctests")
class SignedSqrt(layers.Layer):
    """Takes the square root of its input without guarding the sign: NaN for every negative value."""

    def call(self, x):
        return ops.sqrt(x)


def mlp_sgd_huge_rate(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", name="hidden"),
                          layers.Dense(1, name="out")])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=50.0), loss="mse")
    return m


def adam_rate_ten(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(4)])
    m.compile(optimizer=keras.optimizers.Adam(learning_rate=10.0),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def nan_from_a_layer(tmp, fmt):
    inp = keras.Input((8,))
    x = layers.Dense(8, name="hidden")(inp)
    x = SignedSqrt(name="sqrt")(x)
    m = keras.Model(inp, layers.Dense(1, name="out")(x))
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return m


CASES = [
    bad("mlp_sgd_huge_rate", mlp_sgd_huge_rate,
        Expect(ANY_LAYER, "error",
               r"^Training at learning rate 50 gave (NaN/Inf|a loss .*over 1000x its start) at step \d+ of 100.*"
               r"the NaN edge is [\d.e-]+, so use",
               {"nan_edge": (1e-4, 50.0), "stable_rate": (1e-6, 20.0)}),
        formats=("keras", "h5")),
    bad("adam_rate_ten", adam_rate_ten,
        Expect(ANY_LAYER, "error", r"^Training at learning rate 10 gave", {"nan_edge": (1e-4, 10.0)})),
    bad("nan_from_a_layer", nan_from_a_layer,
        Expect("sqrt", "error", r"gave NaN/Inf at step 1 at every learning rate tried \(9 rates down to [\d.e-]+\), "
                                r"so the learning rate is not the cause; the first non-finite activations appeared "
                                r"in layer 'sqrt'\. At step 0 layer 'sqrt' already outputs \d+ NaN/Inf values",
               {"why": "nan", "stable_rate": None, "kind": "nan-source"})),
]
