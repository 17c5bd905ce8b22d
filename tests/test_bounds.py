"""The interval analysis behind risky-division is sound: whatever bounds it claims for a
tensor, the values computed by TensorFlow stay inside them (property test over random
expressions), and it is exact enough to see the guards people write."""
import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerascheck.tiers.graph.bounds import Bounds

UNARY = {
    "exp": tf.exp, "softplus": tf.math.softplus, "sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu,
    "square": tf.square, "abs": tf.abs, "neg": tf.negative, "sqrt_abs": lambda t: tf.sqrt(tf.abs(t)),
    "mean": lambda t: tf.reduce_mean(t, axis=-1, keepdims=True), "sum": lambda t: tf.reduce_sum(t, axis=-1, keepdims=True),
    "max": lambda t: tf.reduce_max(t, axis=-1, keepdims=True), "minus_max": lambda t: t - tf.reduce_max(t, axis=-1, keepdims=True),
    "log_guarded": lambda t: tf.math.log(tf.abs(t) + 1e-3), "clip": lambda t: tf.clip_by_value(t, -2.0, 3.0),
    "rsqrt_guarded": lambda t: tf.math.rsqrt(tf.square(t) + 0.5), "stop": tf.stop_gradient,
}
BINARY = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "maximum": tf.maximum, "minimum": tf.minimum,
          "div_guarded": lambda a, b: a / (tf.abs(b) + 0.25)}

expressions = st.recursive(
    st.one_of(st.just(("x",)), st.floats(-5, 5).map(lambda c: ("const", round(c, 2)))),
    lambda inner: st.one_of(st.tuples(st.sampled_from(sorted(UNARY)), inner),
                            st.tuples(st.sampled_from(sorted(BINARY)), inner, inner)),
    max_leaves=6,
)


def _build(expr, x):
    if expr[0] == "x":
        return x
    if expr[0] == "const":
        return tf.fill(tf.shape(x), tf.constant(expr[1], tf.float32))
    if expr[0] in UNARY:
        return UNARY[expr[0]](_build(expr[1], x))
    return BINARY[expr[0]](_build(expr[1], x), _build(expr[2], x))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions, scale=st.sampled_from([0.0, 1.0, 30.0]), seed=st.integers(0, 1000))
def test_claimed_bounds_hold_for_computed_values(expr, scale, seed):
    fn = tf.function(lambda x: _build(expr, x) + tf.zeros_like(x[:, :1]))
    concrete = fn.get_concrete_function(tf.TensorSpec((None, 5), tf.float32))
    out = concrete.outputs[0]
    lo, hi = Bounds().interval(out)
    x = (np.random.default_rng(seed).standard_normal((16, 5)) * scale).astype("float32")
    values = concrete(tf.constant(x)).numpy()
    finite = values[np.isfinite(values)]
    slack = 1e-4 * (1 + np.abs(finite))
    assert np.all(finite >= lo - slack) and np.all(finite <= hi + slack), (expr, (lo, hi), finite.min(), finite.max())


def _interval(fn):
    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec((None, 5), tf.float32))
    return Bounds().interval(concrete.outputs[0])


@pytest.mark.parametrize("fn,lower", [
    (lambda x: tf.reduce_sum(tf.abs(x), -1) + 1e-7, 1e-7),
    (lambda x: tf.maximum(tf.norm(x, axis=-1), 1e-6), 1e-6),
    (lambda x: tf.clip_by_value(tf.abs(x), 1e-6, 1.0), 1e-6),
    (lambda x: tf.math.softplus(x) + 1e-6, 1e-6),
    (lambda x: tf.reduce_sum(tf.exp(x - tf.reduce_max(x, -1, keepdims=True)), -1), 1.0),
    (lambda x: tf.sqrt(tf.math.reduce_variance(x, -1) + 1e-5), math.sqrt(1e-5)),
])
def test_guards_give_a_positive_lower_bound(fn, lower):
    assert _interval(fn)[0] == pytest.approx(lower, rel=1e-6)


@pytest.mark.parametrize("fn", [
    lambda x: tf.reduce_sum(x, -1),
    lambda x: tf.sqrt(tf.math.reduce_variance(x, -1)),
    lambda x: tf.exp(x),  # underflows to 0
    lambda x: tf.math.softplus(x),
    lambda x: tf.sigmoid(x),
])
def test_unguarded_values_can_reach_zero(fn):
    assert _interval(fn)[0] <= 0
