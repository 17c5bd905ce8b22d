"""README and the bundled examples stay true."""
import os

import keras

from helpers import ROOT, json_report, kerascheck
from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.rulesdoc import rule_table, with_table

# What each bundled example is there to show (README's demo relies on it).
EXPECTED = {
    "healthy.keras": set(),
    "rnn_without_clipping.keras": {("missing-rnn-clipping", "encoder"), ("no-lr-schedule", None)},
    "double_softmax.keras": {("softmax-loss-mismatch", "probs")},
    "bad_init.keras": {("unhealthy-weights", "zeros"), ("unhealthy-weights", "huge")},
    "lambda_layer.keras": {("unsafe-code", "double")},
    "raw_pixels.keras": {("unscaled-inputs", "conv"), ("no-lr-schedule", None)},
    "legacy_logits.h5": {("softmax-loss-mismatch", "logits"), ("no-lr-schedule", None)},
    # Its problems live in its custom layers' code (the graph tier); statically, only the
    # classes it needs show.
    "custom_norm.keras": {("unsafe-code", "standardize"), ("unsafe-code", "attention")},
}


def test_readme_rule_table_is_generated_from_the_rules():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert rule_table() in text
    assert with_table(text) == text, "run: python -m kerascheck.rulesdoc README.md"


def test_bundled_examples_show_what_they_are_for():
    proc = kerascheck("--static", "--format", "json", os.path.join(ROOT, "examples"))
    assert proc.returncode == 1, proc.stderr
    got = {os.path.basename(m["path"]): {(f["rule"], f["layer"]) for f in m["findings"]}
           for m in json_report(proc.stdout)["models"]}
    assert got == EXPECTED


def test_builtin_layer_list_covers_the_installed_keras():
    installed = {n for n in dir(keras.layers) if n[:1].isupper() and isinstance(getattr(keras.layers, n), type)}
    assert installed - BUILTIN_LAYERS == set()


def test_bundled_examples_under_the_probes():
    proc = kerascheck("--format", "json", "--select", "KC1,KC6", "--custom-objects",
                      os.path.join(ROOT, "examples", "custom_layers.py"), os.path.join(ROOT, "examples"))
    assert proc.returncode == 1, proc.stderr
    models = {os.path.basename(m["path"]): m for m in json_report(proc.stdout)["models"]}
    graph = {(f["rule"], f["layer"], f["severity"], f["evidence"]["source"]["line"])
             for f in models["custom_norm.keras"]["findings"] if f["code"] in ("KC101", "KC102")}
    assert graph == {("risky-division", "standardize", "error", 16), ("unstable-softmax", "attention", "error", 24)}
    assert models["healthy.keras"]["findings"] == [] and models["healthy.keras"]["skipped"] == []
    found = {(f["rule"], f["layer"]) for f in models["bad_init.keras"]["findings"]}
    found |= {(c["rule"], c["layer"]) for f in models["bad_init.keras"]["findings"]
              for c in f["evidence"].get("consequences", [])}
    assert {("dead-units", "zeros"), ("cannot-overfit", None), ("vanishing-gradients", "zeros")} <= found
    lam = models["lambda_layer.keras"]
    assert lam["findings"] == [] and len(lam["skipped"]) == 8
    graph_rules = {"unstable-softmax", "risky-division"}
    assert all("the Lambda layer 'double' could not be inspected safely" in s["reason"]
               for s in lam["skipped"] if s["rule"] in graph_rules)
    assert all("marshalled Python bytecode" in s["reason"] and "kerascheck will not load it" in s["reason"]
               for s in lam["skipped"] if s["rule"] not in graph_rules)
