"""Build the small example models under examples/: each shows at least one problem, one is healthy.

    python examples/build_examples.py examples

The generated files are committed (a few KB each) so `make demo` needs no build step.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import layers  # noqa: E402


def _decaying_rate():
    # Examples that are not about no-lr-schedule decay their rate, so each shows only its own problem.
    return keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)


def healthy():
    inputs = keras.Input((28, 28, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(8, 3, strides=2, activation="relu", kernel_initializer="he_normal")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(x)
    outputs = layers.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="healthy_cnn")
    schedule = _decaying_rate()
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def rnn_without_clipping():
    inputs = keras.Input((20,), dtype="int32", name="tokens")
    x = layers.Embedding(500, 16)(inputs)
    x = layers.LSTM(16, name="encoder")(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name="sentiment_lstm")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def double_softmax():
    model = keras.Sequential([
        keras.Input((16,)),
        layers.Dense(32, activation="relu"),
        layers.Dense(4, activation="softmax", name="probs"),
    ], name="double_softmax")
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=1000)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def bad_init():
    model = keras.Sequential([
        keras.Input((64,)),
        layers.Dense(64, activation="relu", kernel_initializer="zeros", name="zeros"),
        layers.Dense(64, activation="tanh", name="huge",
                     kernel_initializer=keras.initializers.RandomNormal(stddev=5.0)),
        layers.Dense(1, name="out"),
    ], name="bad_init")
    schedule = _decaying_rate()
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    return model


def lambda_layer():
    inputs = keras.Input((8,))
    x = layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs, name="with_lambda")
    schedule = _decaying_rate()
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    return model


def custom_norm():
    # The layers come from examples/custom_layers.py (not registered: kerascheck needs
    # --custom-objects to load them, and never imports the module the file names).
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("custom_layers", os.path.join(here, "custom_layers.py"))
    custom = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(custom)
    inputs = keras.Input((16,), name="features")
    x = custom.Standardize(name="standardize")(inputs)
    x = layers.Dense(8, name="scores")(x)
    x = custom.Attention(name="attention")(x)
    outputs = layers.Dense(1, name="out")(x)
    model = keras.Model(inputs, outputs, name="custom_norm")
    schedule = _decaying_rate()
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    return model


def raw_pixels():
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = layers.Flatten()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="raw_pixels")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def legacy_logits():
    # A linear output fed to a crossentropy that expects probabilities, saved as legacy HDF5.
    model = keras.Sequential([
        keras.Input((10,)),
        layers.Dense(16, activation="relu"),
        layers.Dense(3, name="logits"),
    ], name="legacy_logits")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
    return model


EXAMPLES = {
    "healthy.keras": healthy,
    "rnn_without_clipping.keras": rnn_without_clipping,
    "double_softmax.keras": double_softmax,
    "bad_init.keras": bad_init,
    "lambda_layer.keras": lambda_layer,
    "raw_pixels.keras": raw_pixels,
    "custom_norm.keras": custom_norm,
    "legacy_logits.h5": legacy_logits,
}


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for filename, build in EXAMPLES.items():
        keras.utils.set_random_seed(0)
        model = build()
        path = os.path.join(out, filename)
        model.save(path)
        keras.backend.clear_session()
        print(f"wrote {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
