"""Labels that the output activation cannot reach or the loss cannot take; each with its measured numbers."""
import os

import keras
import numpy as np
from keras import layers

from helpers import Expect, bad

N = 200
RNG_SEED = 0


def head(units, activation=None, loss="mse", name="out", features=6):
    """A small MLP whose last layer is the output under test."""
    def build(tmp, fmt):
        inp = keras.Input((features,))
        x = layers.Dense(8, activation="relu")(inp)
        m = keras.Model(inp, layers.Dense(units, activation=activation, name=name)(x))
        m.compile(optimizer="adam", loss=loss)
        return m
    return build


def data(y=None, features=6, **more):
    """--data with standard-normal inputs and the labels `y` (or y_<output name>), each made from an rng."""
    def write(tmp):
        rng = np.random.default_rng(RNG_SEED)
        arrays = {"y": y(rng)} if y is not None else {}
        arrays.update({key: make(rng) for key, make in more.items()})
        examples = len(next(iter(arrays.values())))
        arrays["x"] = rng.normal(size=(examples, features)).astype("float32")
        path = os.path.join(str(tmp), "data.npz")
        np.savez(path, **arrays)
        return path
    return write


def one_hot(rng, n=N, k=5):
    return np.eye(k, dtype="float32")[rng.integers(0, k, n)]


def multi_hot(rng, n=N, k=6):
    y = (rng.random((n, k)) < 0.35).astype("float32")
    y[0] = [1, 1, 0, 0, 0, 0]  # at least one row with two labels, whatever the draw
    return y


def linspace(low, high, n=100):
    return lambda rng: np.linspace(low, high, n).astype("float32")[:, None]


def with_nan(rng):
    y = rng.uniform(7, 12, (40, 1)).astype("float32")
    y[[4, 9]] = np.nan
    return y


@keras.saving.register_keras_serializable("kc_label_cases")
class ProbabilityHead(keras.layers.Layer):
    """A custom output layer: kerascheck cannot read its activation and measures what it outputs."""

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
    m = keras.Model(inp, ProbabilityHead(3, name="probs")(layers.Dense(8, activation="relu")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


def two_outputs(tmp, fmt):
    inp = keras.Input((6,))
    x = layers.Dense(8, activation="relu")(inp)
    m = keras.Model(inp, {"kind": layers.Dense(4, activation="softmax", name="kind")(x),
                          "size": layers.Dense(1, name="size")(x)})
    m.compile(optimizer="adam", loss={"kind": "categorical_crossentropy", "size": "mse"})
    return m


def activation_layer_head(tmp, fmt):
    inp = keras.Input((6,))
    x = layers.Dense(1, name="score")(layers.Dense(8, activation="relu")(inp))
    m = keras.Model(inp, layers.Activation("sigmoid", name="squash")(x))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    # Targets outside the output activation's range.
    bad("tanh_targets_7_to_12", head(1, "tanh"),
        Expect("out", "error", r"Output 'out' is tanh, which only reaches \[-1, 1\], but 100 of 100 targets "
                               r"\(100%\) in 'y' lie outside it \(targets span 7 to 12\): mean_squared_error can "
                               r"never",
               {"kind": "out-of-reach", "unreachable": 100, "unreachable_share": 1.0, "label_min": 7,
                "label_max": 12, "reachable": [-1.0, 1.0]}),
        data=data(linspace(7, 12))),
    bad("sigmoid_targets_minus_60_to_60", activation_layer_head,
        Expect("squash", "error", r"Output 'squash' is sigmoid, which only reaches \[0, 1\], but 99 of 100 targets "
                                  r"\(99%\) in 'y' lie outside it \(targets span -60 to 60\)",
               {"unreachable": 99, "unreachable_share": 0.99, "label_min": -60, "label_max": 60,
                "activation_layer": "squash"}),
        data=data(linspace(-60, 60))),
    bad("relu_negative_targets", head(1, "relu", loss="mae"),
        Expect("out", "error", r"is relu, which only reaches \[0, inf\), but 100 of 200 targets \(50%\)",
               {"unreachable": 100, "reachable": [0.0, None], "loss": "mean_absolute_error"}),
        data=data(lambda rng: np.repeat([-1.5, 2.5], 100).astype("float32"))),
    bad("softplus_few_negative_targets", head(1, "softplus"),
        Expect("out", "warning", r"is softplus, which only reaches \[0, inf\), but 1 of 200 targets \(0\.5%\)",
               {"unreachable": 1, "unreachable_share": 0.005, "label_min": -0.25}),
        data=data(lambda rng: np.r_[[-0.25], np.linspace(1, 5, 199)].astype("float32"))),
    bad("custom_output_measured_as_probabilities", custom_head,
        Expect("probs", "warning", r"Output 'probs' \(custom; it gave probabilities when kerascheck ran the "
                                   r"model\) only reaches \[0, 1\], but 200 of 600 targets \(33%\)",
               {"measured_output": "probabilities", "unreachable": 200, "label_max": 4}),
        data=data(lambda rng: np.tile([[0.0, 4.0, 3.0], [0.5, 0.2, 0.3]], (N // 2, 1)).astype("float32"))),
    bad("nonfinite_rows_are_left_out", head(1, "tanh"),
        Expect("out", "error", r"38 of 38 targets \(100%\).*Rows holding NaN or Inf \(2 of 40\) were left out: "
                               r"nonfinite-data reports them\.",
               {"nonfinite_rows_skipped": 2, "examples": 38, "label_shape": [40, 1]}),
        data=data(with_nan)),

    # Exclusive and non-exclusive classes against the activation.
    bad("onehot_with_sigmoids_and_binary_crossentropy", head(5, "sigmoid", "binary_crossentropy", name="tags"),
        Expect("tags", "warning", r"Output 'tags' scores 5 classes with independent sigmoids and binary_crossentropy, "
                                  r"but every one of the 200 label rows in 'y' is one-hot",
               {"kind": "onehot-sigmoid", "row_sums": [1, 1], "fix_activation": "softmax",
                "fix_loss": "categorical_crossentropy", "rewires": True}),
        data=data(one_hot)),
    bad("onehot_with_logits_and_binary_crossentropy",
        head(5, None, keras.losses.BinaryCrossentropy(from_logits=True), name="tags"),
        Expect("tags", "warning", r"logits that the loss reads as independent sigmoids",
               {"kind": "onehot-sigmoid", "from_logits": True}),
        data=data(one_hot)),
    bad("onehot_with_sigmoids_and_categorical_crossentropy",
        head(5, "sigmoid", "categorical_crossentropy", name="tags"),
        Expect("tags", "warning", r"independent sigmoids and categorical_crossentropy", {"kind": "onehot-sigmoid"}),
        data=data(one_hot)),
    bad("onehot_with_softmax_and_binary_crossentropy", head(5, "softmax", "binary_crossentropy", name="tags"),
        Expect("tags", "warning", r"applies softmax over 5 units, but binary_crossentropy scores each unit as an "
                                  r"independent yes/no; every one of the 200 label rows",
               {"kind": "onehot-binary", "fix_loss": "categorical_crossentropy"}),
        data=data(one_hot)),
    bad("multihot_with_softmax_and_binary_crossentropy", head(6, "softmax", "binary_crossentropy", name="tags"),
        Expect("tags", "error", r"applies softmax over 6 units, whose values sum to 1, but \d+ of 200 label rows "
                                r"\(\d+%\) in 'y' do not hold exactly one 1 \(row sums 0 to [3-6]\)",
               {"kind": "multihot-softmax", "unreachable": (100, 200), "fix_activation": "sigmoid",
                "fix_loss": "binary_crossentropy"}),
        data=data(multi_hot)),
    bad("multihot_with_softmax_and_categorical_crossentropy",
        head(6, "softmax", "categorical_crossentropy", name="tags"),
        Expect("tags", "error", r"softmax over 6 units.*row sums 0 to", {"kind": "multihot-softmax"}),
        data=data(multi_hot)),
    bad("softmax_over_one_unit_with_binary_labels", head(1, "softmax", "binary_crossentropy", name="yes"),
        Expect("yes", "error", r"softmax over a single unit, which outputs 1\.0 for every input, but 100 of 200 "
                               r"labels \(50%\) in 'y' are not 1 \(the values are 0 and 1\)",
               {"kind": "softmax-single-unit", "unreachable": 100, "fix_activation": "sigmoid"}),
        data=data(lambda rng: np.repeat([0, 1], 100).astype("float32"))),

    # Class ids against one-hot losses, and the reverse.
    bad("class_ids_with_categorical_crossentropy", head(4, "softmax", "categorical_crossentropy", name="probs"),
        Expect("probs", "error", r"trained with categorical_crossentropy, which wants one-hot rows of 4 values, but "
                                 r"'y' holds integer class ids \(shape \(200,\); the values are 0, 1, 2 and 3\): "
                                 r"fit\(\) fails",
               {"kind": "ids-categorical", "label_shape": [200], "distinct": 4, "values": [0, 1, 2, 3],
                "fix_loss": "sparse_categorical_crossentropy"}),
        data=data(lambda rng: np.arange(N) % 4), formats=("keras", "h5")),
    bad("class_ids_with_categorical_crossentropy_on_one_unit", head(1, "softmax", "categorical_crossentropy",
                                                                     name="probs"),
        Expect("probs", "error", r"integer class ids \(shape \(200, 1\); the values are 0, 1 and 2\) and the output "
                                 r"has 1 unit",
               {"kind": "ids-categorical", "units": 1}),
        data=data(lambda rng: (np.arange(N) % 3)[:, None])),
    bad("onehot_with_sparse_crossentropy", head(4, "softmax", "sparse_categorical_crossentropy", name="probs"),
        Expect("probs", "error", r"sparse_categorical_crossentropy, which takes one class id per example, but 'y' "
                                 r"holds one-hot rows \(shape \(200, 4\)\)",
               {"kind": "onehot-sparse", "label_shape": [200, 4], "fix_loss": "categorical_crossentropy"}),
        data=data(lambda rng: one_hot(rng, k=4))),
    bad("class_ids_beyond_the_units", head(4, "softmax", "sparse_categorical_crossentropy", name="probs"),
        Expect("probs", "error", r"has 4 units, so class ids 0 to 3, but 50 of 200 labels \(25%\) in 'y' are outside "
                                 r"that \(the values are 1, 2, 3 and 4\)",
               {"kind": "ids-out-of-range", "unreachable": 50, "label_min": 1, "label_max": 4}),
        data=data(lambda rng: np.arange(N) % 4 + 1)),
    bad("fractional_labels_with_sparse_crossentropy", head(3, "softmax", "sparse_categorical_crossentropy",
                                                           name="probs"),
        Expect("probs", "error", r"takes whole class ids, but 100 of 200 labels \(50%\) in 'y' are fractional",
               {"kind": "sparse-fractional"}),
        data=data(lambda rng: np.tile([0.5, 1.0], 100).astype("float32"))),

    # Class labels trained with a regression loss.
    bad("onehot_with_mean_squared_error", head(3, "softmax", "mse", name="probs"),
        Expect("probs", "warning", r"trained with mean_squared_error, a regression loss, on one-hot class rows "
                                   r"\(3 columns, every row summing to 1\)",
               {"kind": "classes-regression", "fix_loss": "categorical_crossentropy"}),
        data=data(lambda rng: one_hot(rng, k=3))),
    bad("onehot_with_log_cosh_on_a_linear_head", head(3, None, "log_cosh"),
        Expect("out", "warning", r"log_cosh, a regression loss, on one-hot class rows", {"fix_activation": "softmax"}),
        data=data(lambda rng: one_hot(rng, k=3))),
    bad("zero_one_labels_with_mean_squared_error", head(1, "sigmoid", "mse"),
        Expect("out", "warning", r"mean_squared_error, a regression loss, on labels that are only 0 and 1",
               {"fix_activation": "sigmoid", "fix_loss": "binary_crossentropy", "distinct": 2}),
        data=data(lambda rng: np.arange(N) % 2)),
    bad("class_ids_with_huber_on_one_unit", head(1, None, keras.losses.Huber()),
        Expect("out", "warning", r"huber, a regression loss, on labels that are class ids 0 to 4 \(5 distinct whole "
                                 r"numbers\) in 'y': it treats the ids as points on a line \(4 lies closer to 3 than "
                                 r"to 0\)",
               {"fix_loss": "sparse_categorical_crossentropy", "distinct": 5}),
        data=data(lambda rng: np.arange(N) % 5)),

    # Labels binary crossentropy cannot take.
    bad("plus_minus_one_with_binary_crossentropy", head(1, "sigmoid", "binary_crossentropy"),
        Expect("out", "error", r"binary_crossentropy wants labels in \[0, 1\] for output 'out', but 100 of 200 labels "
                               r"\(50%\) in 'y' are outside it \(the values are -1 and 1\)",
               {"kind": "binary-range", "unreachable": 100, "values": [-1, 1]}),
        data=data(lambda rng: np.tile([-1.0, 1.0], 100).astype("float32"))),
    bad("mask_of_0_and_255_with_binary_crossentropy", head(4, "sigmoid", "binary_crossentropy", name="mask"),
        Expect("mask", "error", r"400 of 800 labels \(50%\) in 'y' are outside it \(the values are 0 and 255\)",
               {"kind": "binary-range", "values": [0, 255], "label_shape": [200, 4]}),
        data=data(lambda rng: np.where(np.arange(N)[:, None] % 2, [0, 255, 255, 0], [255, 0, 0, 255]).astype("uint8"))),
    bad("class_ids_with_binary_crossentropy", head(1, "sigmoid", "binary_crossentropy"),
        Expect("out", "error", r"66 of 200 labels \(33%\) in 'y' are outside it \(the values are 0, 1 and 2\)",
               {"fix_loss": "sparse_categorical_crossentropy"}),
        data=data(lambda rng: np.arange(N) % 3)),

    # Shapes that only line up by broadcasting.
    bad("two_units_one_label_column", head(2),
        Expect("out", "error", r"Output 'out' has 2 units but 'y' gives one label per example \(shape \(200, 1\); "
                               r"200 distinct values from .*\): Keras broadcasts the column across all 2 units",
               {"kind": "broadcast", "units": 2, "label_shape": [200, 1]}),
        data=data(lambda rng: rng.normal(size=(N, 1)).astype("float32"))),
    bad("two_sigmoids_one_binary_column", head(2, "sigmoid", "binary_crossentropy"),
        Expect("out", "error", r"has 2 units but 'y' gives one label per example .*fit\(\) fails with a shape error",
               {"kind": "broadcast", "fix_loss": "sparse_categorical_crossentropy"}),
        data=data(lambda rng: (np.arange(N) % 2)[:, None])),
    bad("one_unit_three_label_columns", head(1),
        Expect("out", "error", r"has 1 unit but 'y' gives 3 values per example \(shape \(200, 3\)\): Keras "
                               r"broadcasts the single unit",
               {"kind": "broadcast", "label_shape": [200, 3]}),
        data=data(lambda rng: rng.normal(size=(N, 3)).astype("float32"))),

    # Losses undefined on the labels.
    bad("mape_with_zero_targets", head(1, None, "mape"),
        Expect("out", "error", r"mean_absolute_percentage_error divides by the target, but 40 of 200 targets "
                               r"\(20%\) in 'y' are 0",
               {"kind": "mape-zero", "zero_targets": 40}),
        data=data(lambda rng: np.r_[np.zeros(40), np.linspace(1, 9, 160)].astype("float32"))),
    bad("poisson_with_negative_targets", head(1, "exponential", "poisson"),
        Expect("out", "error", r"poisson needs counts \(targets >= 0\), but 20 of 200 targets \(10%\) in 'y' are "
                               r"negative \(min -2\)",
               {"kind": "poisson-negative", "negative_targets": 20}),
        data=data(lambda rng: np.r_[np.full(20, -2.0), np.arange(180) % 6].astype("float32"))),
    bad("kl_divergence_with_negative_targets", head(3, "softmax", "kl_divergence", name="dist"),
        Expect("dist", "error", r"kl_divergence compares probability distributions, but 100 of 600 targets \(17%\) "
                                r"in 'y' lie outside \[0, 1\] \(targets span -0\.5 to 1\)",
               {"kind": "kl-range", "unreachable": 100}),
        data=data(lambda rng: np.tile([[0.5, 1.0, -0.5], [0.2, 0.3, 0.5]], (100, 1)).astype("float32"))),
    bad("msle_with_targets_below_minus_one", head(1, None, "msle"),
        Expect("out", "error", r"undefined for targets <= -1, and 10 of 200 targets \(5%\) in 'y' are at or below "
                               r"-1 \(min -3\)",
               {"kind": "msle-negative", "targets_at_most_minus_one": 10}),
        data=data(lambda rng: np.r_[np.full(10, -3.0), np.linspace(0, 5, 190)].astype("float32"))),
    bad("msle_with_slightly_negative_targets", head(1, None, "msle"),
        Expect("out", "warning", r"and 10 of 200 targets \(5%\) in 'y' are negative \(min -0\.5\); Keras reads every "
                                 r"negative target as 0",
               {"negative_targets": 10, "targets_at_most_minus_one": 0}),
        data=data(lambda rng: np.r_[np.full(10, -0.5), np.linspace(0, 5, 190)].astype("float32"))),

    # One label for everything.
    bad("a_single_label_value", head(1, "sigmoid", "binary_crossentropy"),
        Expect("out", "error", r"Every one of the 200 examples in 'y' has the same label \(1\)",
               {"kind": "constant", "constant": 1, "distinct": 1}),
        data=data(lambda rng: np.ones(N, "float32"))),
    bad("a_single_label_row", head(3, "softmax", "categorical_crossentropy", name="probs"),
        Expect("probs", "error", r"has the same label \(\[0, 1, 0\]\)", {"constant": [0, 1, 0]}),
        data=data(lambda rng: np.tile([[0.0, 1.0, 0.0]], (N, 1)).astype("float32"))),

    # Several outputs: each judged against its own labels, y_<output name>.
    bad("two_outputs_one_with_class_ids", two_outputs,
        Expect("kind", "error", r"Output 'kind' is trained with categorical_crossentropy, which wants one-hot rows of "
                                r"4 values, but 'y_kind' holds integer class ids",
               {"labels": "y_kind", "output": "kind"}),
        data=data(y_kind=lambda rng: np.arange(N) % 4,
                  y_size=lambda rng: rng.normal(size=(N, 1)).astype("float32"))),
]
