"""kerascheck.Monitor on real fits: the rules on the live run, the step and layer of a divergence, the report."""
import glob
import json
import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

import kerascheck
from helpers import ROOT, assert_quiet, import_file, json_report, matches
from kerascheck.engine import Report, all_rules
from kerascheck.monitor import LIVE_RULES, LiveResults

CASES = os.path.join(ROOT, "tests", "rules", "cases")


class Losses(keras.callbacks.Callback):
    """What Keras itself logs at every step, to check the monitor's step numbers against."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))

    @property
    def first_nonfinite(self):
        return next((i + 1 for i, v in enumerate(self.losses) if not math.isfinite(v)), None)


def regression(n=320, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    return x, (x @ rng.standard_normal((8, 1))).astype("float32")


def mlp(optimizer, hidden_bias=None):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", name="hidden"),
                          layers.Dense(32, activation="relu", name="dead", bias_initializer=hidden_bias)
                          if hidden_bias is not None else layers.Identity(), layers.Dense(1, name="out")])
    m.compile(optimizer=optimizer, loss="mse")
    return m


def finding(monitor, rule):
    found = [f for f in monitor.report.findings if f.rule == rule]
    assert len(found) == 1, [(f.rule, f.message) for f in monitor.report.findings]
    return found[0]


def lines(text, prefix):
    return [l for l in text.replace("\r", "\n").split("\n") if l.startswith(prefix)]


# ------------------------------------------------------------------ divergence


def test_rate_that_turns_the_loss_nan_reports_step_layer_rate_and_stops_there(capsys):
    x, y = regression()
    model = mlp(keras.optimizers.SGD(learning_rate=0.5))
    keras_log = Losses()
    monitor = kerascheck.Monitor(every=3, stop_on="error")
    model.fit(x, y, epochs=3, batch_size=32, shuffle=False, callbacks=[monitor, keras_log], verbose=1)
    out = capsys.readouterr().out

    step = keras_log.first_nonfinite
    assert step is not None and 2 <= step <= 12
    f = finding(monitor, "nan-in-training")
    assert f.severity == "error" and f.layer == "out"
    assert f.evidence["step"] == step and f.evidence["epoch"] == 1 and f.evidence["learning_rate"] == 0.5
    # The forward pass still fits in float32; the squared error's gradient at the output does not.
    assert f.evidence["first_nonfinite"]["where"] == "gradients"
    assert re.search(rf"^Training at learning rate 0\.5 gave NaN/Inf at step {step} \(epoch 1\); replayed from the "
                     r"last finite weights on the batch that broke them, the first non-finite gradients appeared "
                     r"in layer 'out'\.$", f.message), f.message
    assert "learning_rate=0.05" in f.fix
    # Stopped at that very step: no further batch ran.
    assert len(keras_log.losses) == step and int(model.optimizer.iterations) == step
    assert monitor.stopped_at == {"step": step, "epoch": 1, "rule": "nan-in-training", "layer": "out"}
    # Printed once, on a line of its own, and the end-of-training summary is the command line's text.
    assert len(lines(out, "kerascheck: error KC103 nan-in-training layer 'out' (step")) == 1
    assert len(lines(out, f"kerascheck: stopping training at step {step}")) == 1
    assert "Found 1 problem (1 error) in 1 file." in out  # one epoch: too short to judge the rate's decay

    # The last finite state and the batch that broke it replay the step.
    last = monitor.last_finite
    assert last.step == step and last.where == "gradients" and last.learning_rate == 0.5
    assert all(np.all(np.isfinite(w)) for w in last.weights if np.asarray(w).dtype.kind == "f")
    assert len(last.batch[0]) == 32 and np.array_equal(last.batch[0], x[(step - 1) * 32:step * 32])
    last.restore()
    assert not math.isfinite(float(model.train_on_batch(*last.batch)))


def test_nan_in_the_training_data_is_reported_as_the_cause():
    x, y = regression(512)
    x[300, 3] = np.nan  # batch 10 of 32 (rows 288-319), its row 12
    model = mlp(keras.optimizers.Adam(1e-3))
    monitor = kerascheck.Monitor(every=2, verbose=0)
    model.fit(x, y, epochs=2, batch_size=32, shuffle=False, callbacks=[monitor], verbose=0)

    f = finding(monitor, "nonfinite-data")
    assert f.severity == "error" and f.evidence["step"] == 10
    assert f.message.startswith("The training batch of step 10 (epoch 1) holds 1 non-finite value: 1 NaN in 'x' "
                                "(1 of 32 rows, column 3; first rows 12).")
    assert f.evidence["arrays"][0]["first_rows"] == [12]
    # The divergence is a consequence, located in the first layer the NaN reaches; a ReLU in the
    # compiled step swallowed it from the loss, so only the weights showed it.
    (nan,) = f.evidence["consequences"]
    assert nan["rule"] == "nan-in-training" and nan["layer"] == "hidden"
    assert "turned the weights NaN/Inf (the loss Keras logged stayed finite) at step 10 (epoch 1)" in nan["message"]
    assert monitor.report.exit_code("error") == 1 and [m.findings for m in monitor.report.models][0][0] is f


# ------------------------------------------------------------------ healthy fits


def bright_images(n=384, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.random((n, 12, 12, 3)) * 0.5 + y[:, None, None, None] * 0.5).astype("float32")
    return x, y


def test_healthy_cnn_and_lstm_get_no_warning_and_every_live_rule_judges(capfd):
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((12, 12, 3)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(),
                            layers.Conv2D(16, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                            layers.Dropout(0.2), layers.Dense(2, activation="softmax")])
    cnn.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = bright_images()
    cnn_monitor = kerascheck.Monitor(every=2, verbose=0)
    cnn.fit(x[:320], y[:320], validation_data=(x[320:], y[320:]), epochs=3, batch_size=32,
            callbacks=[cnn_monitor], verbose=0)

    rng = np.random.default_rng(1)
    seq = rng.standard_normal((384, 10, 3)).astype("float32")
    label = (seq[:, :, 0].sum(axis=1) > 0).astype("float32")
    lstm = keras.Sequential([keras.Input((10, 3)), layers.LSTM(16, name="encoder"),
                             layers.Dense(1, activation="sigmoid")])
    lstm.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0), loss="binary_crossentropy")
    lstm_monitor = kerascheck.Monitor(every=2, verbose=0)
    lstm.fit(seq, label, epochs=3, batch_size=32, validation_split=0.2, callbacks=[lstm_monitor], verbose=0)

    for monitor in (cnn_monitor, lstm_monitor):
        worrying = [(f.rule, f.layer, f.message) for f in monitor.report.findings if f.severity != "info"]
        assert worrying == []
        result = monitor.report.models[0]
        assert result.errors == []
        # Not a clean bill by default: every live rule ran on real measurements (nonfinite-data only reads
        # a batch that broke the loss).
        assert {s["rule"] for s in result.skipped} == {r.name for r in all_rules()} - set(LIVE_RULES)
        run = monitor.results.train
        assert len(run.losses) == 15 and run.steps[:3] == [1, 3, 5] and run.losses[-1] < run.losses[0]
        assert monitor.results.activations and all(math.isfinite(n) for n in run.global_norms)
    # Only the constant rate is left to say, and it says how it knows.
    assert [f.rule for f in lstm_monitor.report.findings] == ["no-lr-schedule"]
    assert "through all 3 epochs (read from the optimizer at the end of each epoch)" in \
        lstm_monitor.report.findings[0].message
    assert_quiet(capfd.readouterr().err)


def test_a_schedule_or_reduce_on_plateau_counts_as_decay():
    x, y = regression()
    model = mlp(keras.optimizers.Adam(1e-2))
    monitor = kerascheck.Monitor(every=5, verbose=0, select=["no-lr-schedule"])
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[monitor, keras.callbacks.LearningRateScheduler(lambda e, lr: 1e-2 / (1 + e))])
    assert monitor.report.findings == [] and monitor.report.models[0].skipped == []
    assert [round(e["learning_rate"], 5) for e in monitor.results.train.epoch_losses] == [0.01, 0.005, 0.00333]


# ------------------------------------------------------------------ frozen and dead


def test_frozen_model():
    x, y = regression()
    model = mlp(keras.optimizers.Adam(1e-2))
    model.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    monitor = kerascheck.Monitor(every=2, verbose=0)
    with pytest.warns(UserWarning, match="does not have any trainable weights"):  # Keras's own, from its step
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    f = finding(monitor, "stalled-loss")
    assert f.severity == "error" and f.evidence["kind"] == "frozen" and f.evidence["epoch"] == 1
    assert f.message.startswith("The model has no trainable weights (every layer is frozen)")
    assert monitor.results.train.trainable_parameters == 0 and monitor.results.layer_order == []


def test_dead_relu_layer(capsys):
    x, y = regression()
    model = mlp(keras.optimizers.Adam(1e-3), hidden_bias=keras.initializers.Constant(-20.0))
    monitor = kerascheck.Monitor(every=2)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    f = finding(monitor, "dead-units")
    assert f.severity == "warning" and f.layer == "dead"
    assert f.message == "32 of 32 units (100%) in relu layer 'dead' are never active on 32 examples."
    # First judged at the end of the first epoch, from the activations measured then.
    assert f.evidence["dead_share"] == 1.0 and f.evidence["step"] == 10 and f.evidence["epoch"] == 1
    # Everything before the dead layer gets no gradient: folded under it, not reported beside it.
    assert [c["rule"] for c in f.evidence["consequences"]] == ["vanishing-gradients"]
    assert monitor.results.train.layer_norms["hidden"][-1] == 0.0 < monitor.results.train.layer_norms["out"][-1]
    out = capsys.readouterr().out
    assert len(lines(out, "kerascheck: warning KC605 dead-units layer 'dead' (step 10, epoch 1)")) == 1


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_log_dir_holds_the_scalars_and_histograms(tmp_path):
    import tensorflow as tf

    x, y = regression()
    model = mlp(keras.optimizers.Adam(1e-3))
    monitor = kerascheck.Monitor(every=4, log_dir=tmp_path / "logs", verbose=0)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    scalars, histograms = {}, set()
    for path in glob.glob(str(tmp_path / "logs" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                if array.ndim == 0:
                    scalars.setdefault(value.tag, []).append((event.step, float(array)))
                else:
                    histograms.add(value.tag)
    run = monitor.results.train
    assert [s for s, _ in scalars["gradient_norm/hidden"]] == run.steps == [1, 5, 9, 13, 17]
    assert np.allclose([v for _, v in scalars["gradient_norm/hidden"]], run.layer_norms["hidden"], rtol=1e-6)
    assert np.allclose([v for _, v in scalars["update_ratio/out"]], run.update_ratios["out"], rtol=1e-6)
    assert [v for _, v in scalars["learning_rate"]] == pytest.approx([1e-3] * 5)
    assert {"dead_fraction/hidden", "loss/fixed_batch", "loss/epoch", "gradient_norm/global"} <= set(scalars)
    assert {"weights/sequential/hidden/kernel", "weights/sequential/out/bias"} <= histograms


# ------------------------------------------------------------------ ways of training


@keras.saving.register_keras_serializable(package="kctests_monitor")
def scaled_mse(y_true, y_pred):
    return 10.0 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body = layers.Dense(16, activation="relu")
        self.head = layers.Dense(1)

    def call(self, x):
        return self.head(self.body(x))


class OwnStep(Subclassed):
    """Trains through its own train_step and compiles no loss."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tracker = keras.metrics.Mean(name="loss")

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]


def reference_norms(model, x, y, loss_fn):
    """Gradient norms per variable, computed directly, for the weights the model has now."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    return [float(tf.norm(g)) for g in tape.gradient(loss, model.trainable_variables)]


@pytest.mark.parametrize("how", ["subclass-custom-loss-generator", "own-train-step-tf-data"])
def test_subclassed_models_custom_losses_generators_and_tf_data(how):
    import tensorflow as tf

    x, y = regression(256)
    keras.utils.set_random_seed(0)
    if how == "subclass-custom-loss-generator":
        model = Subclassed()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=scaled_mse)

        def batches():
            while True:
                for i in range(0, 256, 32):
                    yield x[i:i + 32], y[i:i + 32]
        data, fit = (batches(),), {"steps_per_epoch": 8}

        def loss_fn(t, p):
            return tf.reduce_mean(scaled_mse(t, p))
    else:
        model = OwnStep()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        data, fit = (tf.data.Dataset.from_tensor_slices((x, y)).batch(32),), {}

        def loss_fn(t, p):
            return tf.reduce_mean(tf.square(p - t))
    monitor = kerascheck.Monitor(every=1, verbose=0)
    model.fit(*data, epochs=2, verbose=0, callbacks=[monitor], **fit)
    result = monitor.report.models[0]
    assert result.errors == [] and all(f.severity == "info" for f in result.findings)
    run = monitor.results.train
    # A model Keras builds in its first step is measured from the second.
    assert run.steps[0] == 2 and run.steps[-1] == 16 and monitor.results.layer_order == ["body", "head"]
    # The last measurement saw the final weights: its norms are the gradients of the compiled (or own) loss.
    fixed_x, fixed_y, _ = monitor._fixed
    expected = reference_norms(model, fixed_x, fixed_y, loss_fn)
    assert run.layer_norms["body"][-1] == pytest.approx(math.hypot(*expected[:2]), rel=1e-4)
    assert run.layer_norms["head"][-1] == pytest.approx(math.hypot(*expected[2:]), rel=1e-4)
    assert np.array_equal(fixed_x, x[:32])  # the first training batch


MIRRORED = r"""
import json, math, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
import kerascheck

rng = np.random.default_rng(0)
x = rng.standard_normal((256, 8)).astype("float32")
y = (x @ rng.standard_normal((8, 1))).astype("float32")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
print("FITTING", file=sys.stderr, flush=True)  # what TensorFlow said on its own start-up is above this
out = {}
for rate in (1e-2, 0.5):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu", name="hidden"),
                                  keras.layers.Dense(1, name="out")])
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
        monitor = kerascheck.Monitor(every=1, verbose=0)
        logged = []
        log = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: logged.append(float(logs["loss"])))
        model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0, callbacks=[monitor, log])
    fx, fy, _ = monitor._fixed
    with tf.GradientTape() as tape:  # outside the strategy: the plain gradient of the plain loss
        loss = tf.reduce_mean(tf.square(model(fx, training=True) - fy))
    norm = float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables)))
    out[str(rate)] = {
        "device": monitor.results.device, "errors": monitor.report.models[0].errors,
        "findings": [[f.rule, f.layer, f.severity, f.evidence.get("step")] for f in monitor.report.findings],
        "measured": len(monitor.results.train.losses), "last_norm": monitor.results.train.global_norms[-1],
        "direct_norm": norm,
        "first_nonfinite": next((i + 1 for i, v in enumerate(logged) if not math.isfinite(v)), None),
        "nan_layer": monitor.results.nan_layer, "fixed": len(fx)}
print("RESULT " + json.dumps(out))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    # Logical devices must be configured before TensorFlow initialises: a process of its own.
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet(proc.stderr.split("FITTING", 1)[1])
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    healthy, diverging = result["0.01"], result["0.5"]
    assert healthy["device"] == "2 CPU replicas (MirroredStrategy)" and healthy["errors"] == []
    assert healthy["measured"] == 16 and healthy["fixed"] == 32
    # The replicas' shares of the loss are added back: the norm is the plain gradient's.
    assert healthy["last_norm"] == pytest.approx(healthy["direct_norm"], rel=1e-4)
    assert all(sev == "info" for _, _, sev, _ in healthy["findings"])
    step = diverging["first_nonfinite"]
    assert step is not None and ["nan-in-training", "out", "error", step] in diverging["findings"]
    # As without the strategy: replayed on the batch that broke it, the output's gradient is the first non-finite.
    assert diverging["nan_layer"]["where"] == "gradients" and diverging["nan_layer"]["step"] == step


# ------------------------------------------------------------------ the report


def test_report_is_the_command_lines_report(tmp_path):
    x, y = regression()
    model = mlp(keras.optimizers.SGD(0.5))
    monitor = kerascheck.Monitor(every=3, report=tmp_path / "training.html", verbose=0)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    report = monitor.report
    assert isinstance(report, Report) and isinstance(report.models[0].probe, LiveResults)
    data = json_report(report.to_json())
    (model_json,) = data["models"]
    assert data["tool"] == "kerascheck" and model_json["path"] == "<training of model 'sequential'>"
    nan = next(f for f in model_json["findings"] if f["rule"] == "nan-in-training")
    assert nan["code"] == "KC103" and nan["evidence"]["step"] >= 2 and nan["evidence"]["epoch"] == 1
    html = (tmp_path / "training.html").read_text()
    assert "KC103 nan-in-training" in html and "the training run (" in html and "Layers and weights" in html
    # Training was not stopped (no stop_on): it ran both epochs.
    assert int(model.optimizer.iterations) == 20 and monitor.stopped_at is None


def test_kerascheck_imports_no_tensorflow_until_monitor_is_asked_for():
    code = ("import sys, kerascheck; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "m = kerascheck.Monitor; assert 'keras' in sys.modules; print(m.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0 and proc.stdout.strip() == "kerascheck.monitor", proc.stderr[-2000:]


def test_options_are_checked():
    with pytest.raises(ValueError, match="stop_on"):
        kerascheck.Monitor(stop_on="fatal")
    with pytest.raises(ValueError, match="every"):
        kerascheck.Monitor(every=0)
    from kerascheck.errors import UsageError

    with pytest.raises(UsageError, match="unknown rule"):
        kerascheck.Monitor(select=["no-such-rule"])


# ------------------------------------------------------------------ the live rules' cases


def _live_cases():
    params = []
    for rule in ("stalled-loss", "train-inference-gap"):
        for kind in ("bad", "good"):
            module = import_file(os.path.join(CASES, rule.replace("-", "_"), f"{kind}.py"), f"kc_live_{rule}_{kind}")
            for case in module.CASES:
                params.append(pytest.param(rule, kind, case, id=f"{rule}-{kind}-{case.name}"))
    return params


@pytest.mark.parametrize("rule,kind,case", _live_cases())
def test_live_rule_case(rule, kind, case, tmp_path):
    """The cases of the rules that only a training run can show, fitted with the monitor (the file harness's rules)."""
    keras.utils.set_random_seed(1234)
    model = case.build(tmp_path, "live")
    data = case.data(tmp_path)
    fit = dict(case.options["fit"])
    callbacks = fit.pop("callbacks", lambda: [])()
    monitor = kerascheck.Monitor(every=2, select=[rule], verbose=0)
    model.fit(data["x"], data["y"], validation_data=data.get("validation"), verbose=0,
              callbacks=[monitor] + callbacks, **fit)
    result = monitor.report.models[0]
    assert result.errors == [] and result.skipped == []
    remaining = list(result.findings)
    for expect in case.expect:
        hit = next((f for f in remaining if matches(f, expect)), None)
        assert hit is not None, f"no finding matches {expect}; findings: " \
                                f"{[(f.layer, f.message, f.evidence) for f in remaining]}"
        remaining.remove(hit)
    assert remaining == [], [(f.layer, f.severity, f.message) for f in remaining]


def test_steps_per_execution_counts_real_steps_and_asks_for_a_fixed_batch():
    x, y = regression(288)  # 9 batches: executions of 4, 4 and 1 steps per epoch
    model = mlp(keras.optimizers.Adam(1e-3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", steps_per_execution=4)
    watched = kerascheck.Monitor(every=1, data=(x[:32], y[:32]), verbose=0)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[watched])
    assert watched.results.train.steps == [4, 8, 9, 13, 17, 18] and int(model.optimizer.iterations) == 18
    blind = kerascheck.Monitor(verbose=0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[blind])
    skipped = {s["rule"]: s["reason"] for s in blind.report.models[0].skipped}
    assert "pass kerascheck.Monitor(data=(x, y))" in skipped["dead-units"] and "exploding-gradients" in skipped
