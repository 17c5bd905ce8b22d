"""A fast subset of the corpus of real model code (bench/corpus), built and checked as `make corpus` does.

Two examples that between them cover many of the code paths real code takes (keras-io's VAE, a
subclass with no call(), is run by tests/test_training_setups.py and by make corpus): the structured-data example
(13 scalar dict inputs, strings and adapted lookup and normalisation layers) and the MovieLens
recommender (a subclass of embeddings with a real batch-dependence bug). Each is built from its
build.py into a temporary folder and checked against its truth.yaml; a problem fails the test with
the lines `make corpus` would print.
"""
import importlib.util
import os
import sys

import pytest

from helpers import ROOT


def _corpus_module():
    """bench/corpus/run.py, imported once under a name of its own (its dataclasses need sys.modules)."""
    name = "kerascheck_corpus_run"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "bench", "corpus", "run.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]

FAST = [("structured_from_scratch", ("default", "data", "static")),
        ("collaborative_filtering", ("default", "static"))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    run = _corpus_module()
    run.BUILD = str(tmp_path_factory.mktemp("corpus-build"))
    return run


# make corpus checks all 54 models this way; the suite's run of two is for make test-slow.
@pytest.mark.slow
@pytest.mark.parametrize("name,modes", FAST, ids=[n for n, _ in FAST])
def test_a_corpus_model_checks_as_its_truth_file_says(corpus, name, modes):
    built, _, error = corpus.build(name, force=True)
    assert built and not error, f"{name} could not be built: {error}"
    runs = corpus.check(name, corpus.load_truth(name), corpus.spec_rule_names(), modes, log=lambda line: None)
    assert runs and {r.mode for r in runs} == set(modes)
    problems = [f"{os.path.basename(r.artifact)} [{r.mode}]: {p}" for r in runs for p in r.problems]
    assert not problems, "\n".join(problems)
    assert all(r.exit in (0, 1) for r in runs)


def test_the_corpus_truth_files_justify_every_entry():
    """Every finding, skip and error a truth file accepts says why (a Keras engineer's one line)."""
    run = _corpus_module()
    names = run.model_names()
    assert len(names) >= 40
    for name in names:
        truth = run.load_truth(name)  # raises SystemExit on an entry without a why
        for item in truth.get("findings") or []:
            assert item["rule"] and len(item["why"].split()) >= 5, (name, item)
        with open(os.path.join(run.MODELS, name, "build.py")) as f:
            source = f.read()
        assert "github.com/keras-team/" in source and "def build(out)" in source, name
