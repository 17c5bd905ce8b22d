"""Large tensors are read in slices: the statistics must not change."""
import os

import numpy as np

import kerascheck.rules.unhealthy_weights as unhealthy
from helpers import ROOT
from kerascheck.engine import check_file, select_rules
from kerascheck.facts.stats import chunked_histogram, chunked_stats, histogram, tensor_stats


def test_chunked_statistics_equal_whole_tensor_statistics():
    a = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 37)).astype("float32")
    a[5, 3] = np.nan
    whole, parts = tensor_stats(a), chunked_stats(a[i:i + 64] for i in range(0, 1000, 64))
    assert parts.nonfinite == whole.nonfinite == 1 and parts.size == whole.size
    for key in ("mean", "std", "min", "max"):
        assert abs(getattr(parts, key) - getattr(whole, key)) < 1e-4 * (1 + abs(getattr(whole, key))), key
    h = chunked_histogram((a[i:i + 64] for i in range(0, 1000, 64)), whole.min, whole.max)
    assert h == histogram(a)


def test_unhealthy_weights_reads_big_tensors_in_slices(monkeypatch):
    path = os.path.join(ROOT, "examples", "bad_init.keras")
    rules = select_rules(["unhealthy-weights"])
    whole = check_file(path, rules, static=True).findings
    monkeypatch.setattr(unhealthy, "CHUNK_BYTES", 1024)  # every kernel now goes through slices
    sliced = check_file(path, rules, static=True).findings
    assert [(f.layer, f.severity, f.message) for f in sliced] == [(f.layer, f.severity, f.message) for f in whole]
    assert sliced[0].evidence["histogram"] == whole[0].evidence["histogram"]


def test_histograms_of_degenerate_ranges():
    for a in (np.full(10, 3.0), np.array([1e-45, 2e-45], "float32"), np.array([-3e38, 3e38], "float32"),
              np.array([1.0, np.nextafter(1.0, 2.0)])):
        h = histogram(a)
        assert sum(h["counts"]) == len(a) and len(h["edges"]) == 31
        assert chunked_histogram([a], float(np.min(a)), float(np.max(a)))["counts"] == h["counts"]


def test_an_output_that_barely_varies_is_not_read_as_probabilities():
    """A fresh DistilBERT classifier's logits are the same small positive pair for every sentence (its
    [CLS] vector barely varies): in [0, 1] by chance, not squashed; a sigmoid's outputs vary."""
    import numpy as np

    from kerascheck.tiers.probe.roles import output_meanings

    rng = np.random.default_rng(0)
    constant_logits = np.tile([[0.12, 0.35]], (32, 1)) + rng.normal(0, 1e-4, (32, 2))
    sigmoid = 1 / (1 + np.exp(-rng.normal(0, 1, (32, 2))))
    assert output_meanings([constant_logits, sigmoid]) == ["unknown", "independent probabilities"]
