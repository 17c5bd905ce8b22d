"""Labels that fit their output and loss: the healthy set-ups, and each bad case with its fix applied."""
import os

import keras
import numpy as np
from keras import layers

from helpers import good

N = 200


def head(units, activation=None, loss="mse", name="out", features=6):
    def build(tmp, fmt):
        inp = keras.Input((features,))
        x = layers.Dense(8, activation="relu")(inp)
        m = keras.Model(inp, layers.Dense(units, activation=activation, name=name)(x))
        m.compile(optimizer="adam", loss=loss)
        return m
    return build


def data(y=None, features=6, **more):
    def write(tmp):
        rng = np.random.default_rng(0)
        arrays = {"y": y(rng)} if y is not None else {}
        arrays.update({key: make(rng) for key, make in more.items()})
        arrays["x"] = rng.normal(size=(len(next(iter(arrays.values()))), features)).astype("float32")
        path = os.path.join(str(tmp), "data.npz")
        np.savez(path, **arrays)
        return path
    return write


def one_hot(rng, k=5):
    return np.eye(k, dtype="float32")[rng.integers(0, k, N)]


def multi_hot(rng, k=6):
    y = (rng.random((N, k)) < 0.35).astype("float32")
    y[0] = [1, 1, 0, 0, 0, 0]
    return y


def standardised(rng):
    y = rng.normal(40, 12, (N, 1))
    return ((y - y.mean()) / y.std()).astype("float32")


def soft_rows(rng, k=4):
    logits = rng.normal(size=(N, k))
    return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")


def with_nan(rng):
    y = (np.arange(40) % 2).astype("float32")
    y[[3, 8]] = np.nan
    return y


def two_outputs(tmp, fmt):
    inp = keras.Input((6,))
    x = layers.Dense(8, activation="relu")(inp)
    m = keras.Model(inp, {"kind": layers.Dense(4, activation="softmax", name="kind")(x),
                          "size": layers.Dense(1, name="size")(x)})
    m.compile(optimizer="adam", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
    return m


def tagger(tmp, fmt):
    """Per-step classes: labels (n, steps) of ids against an output (n, steps, classes)."""
    inp = keras.Input((7, 3))
    x = layers.LSTM(8, return_sequences=True)(inp)
    m = keras.Model(inp, layers.Dense(5, activation="softmax", name="tags")(x))
    m.compile(optimizer=keras.optimizers.Adam(global_clipnorm=1.0), loss="sparse_categorical_crossentropy")
    return m


def tagger_data(tmp):
    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "data.npz")
    np.savez(path, x=rng.normal(size=(N, 7, 3)).astype("float32"), y=rng.integers(0, 5, (N, 7)))
    return path


@keras.saving.register_keras_serializable("kc_label_good")
class ProbabilityHead(keras.layers.Layer):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def build(self, shape):
        self.dense.build(shape)

    def call(self, x):
        return keras.ops.softmax(self.dense(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def custom_head(tmp, fmt):
    inp = keras.Input((6,))
    m = keras.Model(inp, ProbabilityHead(4, name="probs")(layers.Dense(8, activation="relu")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    # The healthy set-ups.
    good("multi_hot_with_sigmoids_and_binary_crossentropy", head(6, "sigmoid", "binary_crossentropy", name="tags"),
         data=data(multi_hot)),
    good("class_ids_with_sparse_crossentropy", head(4, "softmax", "sparse_categorical_crossentropy"),
         data=data(lambda rng: rng.integers(0, 4, N))),
    good("class_id_column_with_sparse_crossentropy", head(4, None,
                                                          keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
         data=data(lambda rng: rng.integers(0, 4, (N, 1)))),
    good("one_hot_with_label_smoothing", head(5, "softmax", keras.losses.CategoricalCrossentropy(label_smoothing=0.1)),
         data=data(one_hot)),
    good("standardised_regression_on_a_linear_output", head(1), data=data(standardised)),
    good("targets_in_0_1_on_a_sigmoid", head(1, "sigmoid", "mse"),
         data=data(lambda rng: rng.uniform(0, 1, (N, 1)).astype("float32"))),
    good("binary_labels_on_one_sigmoid_unit", head(1, "sigmoid", "binary_crossentropy"),
         data=data(lambda rng: rng.integers(0, 2, N).astype("float32"))),
    good("two_outputs_each_with_its_labels", two_outputs,
         data=data(y_kind=lambda rng: rng.integers(0, 4, N), y_size=standardised)),
    good("ids_per_step_of_a_sequence", tagger, data=tagger_data),
    # The bad cases with their fixes applied.
    good("targets_scaled_into_tanh_range", head(1, "tanh"),
         data=data(lambda rng: (2 * (np.linspace(7, 12, N) - 7) / 5 - 1).astype("float32")[:, None])),
    good("non_negative_targets_on_relu", head(1, "relu", "mae"),
         data=data(lambda rng: rng.uniform(0, 5, N).astype("float32"))),
    good("one_hot_with_softmax_and_categorical_crossentropy", head(5, "softmax", "categorical_crossentropy"),
         data=data(one_hot)),
    good("soft_rows_with_softmax_and_categorical_crossentropy", head(4, "softmax", "categorical_crossentropy"),
         data=data(soft_rows)),
    good("soft_labels_with_binary_crossentropy", head(1, "sigmoid", "binary_crossentropy"),
         data=data(lambda rng: rng.uniform(0, 1, N).astype("float32"))),
    good("one_sigmoid_unit_for_binary_labels", head(1, "sigmoid", "binary_crossentropy", name="yes"),
         data=data(lambda rng: np.repeat([0, 1], N // 2).astype("float32"))),
    good("mape_with_positive_targets", head(1, "softplus", "mape"),
         data=data(lambda rng: rng.uniform(1, 9, N).astype("float32"))),
    good("poisson_with_counts", head(1, "exponential", "poisson"),
         data=data(lambda rng: rng.poisson(2.0, N).astype("float32"))),
    good("kl_divergence_with_distributions", head(4, "softmax", "kl_divergence"), data=data(soft_rows)),
    good("msle_with_non_negative_targets", head(1, "relu", "msle"),
         data=data(lambda rng: rng.uniform(0, 50, N).astype("float32"))),
    good("whole_number_targets_that_are_not_class_ids", head(1), data=data(lambda rng: rng.integers(18, 80, N))),
    good("hinge_with_plus_minus_one", head(1, "tanh", "hinge"),
         data=data(lambda rng: rng.choice([-1.0, 1.0], N).astype("float32"))),
    good("custom_output_measured_as_probabilities_for_targets_in_0_1", custom_head, data=data(soft_rows)),
    good("nan_rows_left_to_nonfinite_data", head(1, "sigmoid", "binary_crossentropy"), data=data(with_nan)),
]
