"""Every training set-up the keras-io examples write is probed the way fit() trains it (issue 21).

A model with its own train_step runs that train_step, never an assumed loss; one with no call()
runs forward through the Functional models it holds; what a custom compile() keeps and Keras does
not save is said as the reason, never replaced by a guess.
"""
import os

import numpy as np
import pytest

import setups
from helpers import ROOT, json_report, kerascheck

SETUPS = os.path.join(ROOT, "tests", "setups.py")
HELD = os.path.join(ROOT, "tests", "held_optimizers.py")


def _check(path, *args, code=SETUPS):
    proc = kerascheck(str(path), "--custom-objects", code, "--format", "json", "--no-html", "--fail-on", "error",
                      *args)
    assert proc.returncode in (0, 1), proc.stderr
    return json_report(proc.stdout)["models"][0]


def _runs(model) -> dict:
    return {r["probe"]: r for r in model["probes"]["runs"]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("setups")
    made = {}

    def save(name):
        if name not in made:
            model, *data = getattr(setups, name)()
            path = folder / f"{name}.keras"
            model.save(path)
            made[name] = (path, data, folder)
        return made[name]
    return save


def test_a_vae_with_no_call_trains_through_its_train_step_and_runs_its_parts(saved):
    path, (digits,), folder = saved("vae")
    np.savez(folder / "vae.npz", x=digits)
    for extra in (["--data", str(folder / "vae.npz")], []):
        model = _check(path, "--select", "nan-in-training,dead-units,batch-dependence,unstable-softmax", *extra)
        assert model["probes"]["training"]["how"] == "the model's own train_step"
        assert _runs(model)["train"]["steps_done"] == 100 and not model["probes"]["failed"]
        skipped = {s["rule"]: s["reason"] for s in model["skipped"]}
        # Its encoder draws noise at inference; dead units and the graph are measured on its parts.
        assert "inference output is random" in skipped["batch-dependence"]
        assert "dead-units" not in skipped and "unstable-softmax" not in skipped, skipped
        assert "graph" in model["tiers"] and not [f for f in model["findings"] if f["severity"] != "info"]
    # Without --data (the last run) its inputs are drawn as the decoder rebuilds them: 0 or 1.
    assert "values of 0 or 1 ('decoder' rebuilds it through sigmoid)" in " ".join(model["probes"]["data"]["inputs"])


def test_a_gan_is_probed_with_its_own_optimizers_or_says_what_compile_kept(tmp_path):
    from held_optimizers import held_gan

    gan = held_gan(steps=2)
    gan.save(tmp_path / "gan.keras")
    model = _check(tmp_path / "gan.keras", "--select", "nan-in-training,no-lr-schedule,dead-units", code=HELD)
    reason = {s["rule"]: s["reason"] for s in model["skipped"]}["nan-in-training"]
    # The two Adams are made again from the file; the loss function its compile() took is not in it.
    assert reason.startswith("the training probe failed: HeldGAN.train_step uses self.loss_fn, which the model's "
                             "own compile() sets and Keras does not save"), reason
    assert model["parameters"] == gan.discriminator.count_params() + gan.generator.count_params()
    lr = next(f for f in model["findings"] if f["rule"] == "no-lr-schedule")
    assert "d_optimizer (Adam at 0.0002, 2 steps), g_optimizer (Adam at 0.0001, 2 steps)" in lr["message"]
    assert "dead-units" not in {s["rule"] for s in model["skipped"]}  # its parts still run forward


def test_a_distiller_is_never_trained_with_an_assumed_loss(saved):
    path, (x, y), folder = saved("distiller")
    np.savez(folder / "distill.npz", x=x, y=y)
    for extra in ([], ["--data", str(folder / "distill.npz")]):
        model = _check(path, "--select", "nan-in-training,vanishing-gradients,cannot-overfit", *extra)
        assert model["probes"]["training"]["assumed"] == []
        reasons = {s["rule"]: s["reason"] for s in model["skipped"]}
        assert "Distiller.compute_loss (which Keras's train_step calls) uses self.student_loss_fn" in \
            reasons["nan-in-training"]
        # The teacher, unused by call(), is not reported as a vanishing gradient.
        assert not [f for f in model["findings"] if f["rule"] == "vanishing-gradients"]


def test_a_train_step_that_unpacks_x_and_y_gets_labels(saved):
    path, (x, y), folder = saved("trainer")
    np.savez(folder / "trainer.npz", x=x, y=y)
    model = _check(path, "--select", "nan-in-training,cannot-overfit", "--data", str(folder / "trainer.npz"))
    assert _runs(model)["train"]["steps_done"] == 100 and not model["probes"]["failed"]
    assert not model["probes"]["data"]["synthetic_labels"]
    model = _check(path, "--select", "nan-in-training")
    assert "its train_step unpacks (x, y)" in model["probes"]["data"]["description"]
    assert _runs(model)["train"]["steps_done"] == 100


def test_a_dict_batch_and_a_custom_schedule_reach_the_train_step_as_fit_gives_them(saved):
    path, (data,), folder = saved("seq2seq")
    np.savez(folder / "s2s.npz", x_source=data["source"], x_target=data["target"])
    model = _check(path, "--select", "nan-in-training,cannot-overfit", "--data", str(folder / "s2s.npz"))
    assert not model["probes"]["failed"], model["probes"]["failed"]
    assert "as fit() receives them (source, target)" in model["probes"]["data"]["description"]
    assert model["probes"]["training"]["how"] == "the model's own train_step"
    assert model["probes"]["training"]["learning_rate"] == pytest.approx(2.5e-4)  # the warm-up's first step
    # Without --data nothing can be shaped like the dict: the reason says what would help.
    model = _check(path, "--select", "nan-in-training")
    reason = {s["rule"]: s["reason"] for s in model["skipped"]}["nan-in-training"]
    assert "Seq2Seq.train_step did not run on synthetic inputs shaped like the input shape Keras saved" in reason
    assert reason.endswith("pass --data with a batch as fit() receives it (x_<key> for a dict)")
