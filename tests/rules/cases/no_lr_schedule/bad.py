import keras
from keras import layers

from helpers import Expect, bad


def constant_adam(tmp, fmt):
    m = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-4), loss="mse")
    return m


def uncompiled(tmp, fmt):
    return keras.Sequential([keras.Input((4,)), layers.Dense(1)])


def gan_with_its_own_optimizers(tmp, fmt):
    from held_optimizers import held_gan

    return held_gan(d_rate=2e-4, g_rate=1e-4, steps=2)


CASES = [
    bad("constant_adam", constant_adam,
        Expect(None, "info", r"Adam trains at a constant learning rate of 0\.0003",
               {"learning_rate": (2.99e-4, 3.01e-4)}),
        formats=("keras", "h5")),
    bad("uncompiled", uncompiled, skipped=r"no saved optimizer"),
    # The RMSprop of super().compile() never stepped: the two Adams that did are judged.
    bad("gan_with_its_own_optimizers", gan_with_its_own_optimizers,
        Expect(None, "info", r"^The optimizers that trained this model hold constant learning rates: d_optimizer "
                             r"\(Adam at 0\.0002, 2 steps\), g_optimizer \(Adam at 0\.0001, 2 steps\)")),
]
