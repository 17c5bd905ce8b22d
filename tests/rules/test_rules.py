"""One harness over the rule cases: every bad.py must produce exactly its findings, every good.py none.

Each case is run with only its rule selected (ruff's approach), and cases/healthy.py
with every rule selected, which catches false positives across rules.
"""
import os

import pytest

from helpers import check_evidence, import_file, matches, probe_options
from kerascheck.engine import all_rules, check_file, select_rules

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")


def _load(path):
    return import_file(path, f"kc_case_{abs(hash(path))}").CASES


def _params():
    params = []
    for rule in all_rules():
        folder = os.path.join(HERE, rule.name.replace("-", "_"))
        for kind in ("bad", "good"):
            path = os.path.join(folder, f"{kind}.py")
            if not os.path.exists(path):
                continue
            for case in _load(path):
                for fmt in case.formats:
                    # A probe rule sees the model Keras loaded, whatever the file's format: its .h5 runs
                    # repeat the .keras ones after a load test_reader covers (make test-slow runs them).
                    marks = [pytest.mark.slow] if fmt == "h5" and rule.tier == "probe" else []
                    params.append(pytest.param(rule.name, kind, case, fmt, marks=marks,
                                               id=f"{rule.name}-{kind}-{case.name}-{fmt}"))
    for case in _load(os.path.join(HERE, "healthy.py")):
        for fmt in case.formats:
            marks = [pytest.mark.slow] if fmt == "h5" and case.name != "cnn" else []
            params.append(pytest.param(None, "healthy", case, fmt, marks=marks, id=f"healthy-{case.name}-{fmt}"))
    return params


def test_every_rule_has_bad_and_good_cases():
    for rule in all_rules():
        folder = os.path.join(HERE, rule.name.replace("-", "_"))
        for kind in ("bad", "good"):
            path = os.path.join(folder, f"{kind}.py")
            assert os.path.exists(path) and _load(path), f"{rule.name} has no {kind} cases"


def _materialise(case, fmt, tmp_path):
    import keras

    keras.utils.set_random_seed(1234)  # the same initial weights on every run
    built = case.build(tmp_path, fmt)
    if isinstance(built, str):
        return built
    path = os.path.join(str(tmp_path), f"{case.name}.{fmt}")
    built.save(path)
    return path


@pytest.mark.parametrize("rule_name,kind,case,fmt", _params())
def test_case(rule_name, kind, case, fmt, tmp_path):
    path = _materialise(case, fmt, tmp_path)
    rules = select_rules([rule_name]) if rule_name else list(all_rules())
    options = probe_options(data=case.data(tmp_path) if case.data else None, **case.options)
    result = check_file(path, rules, options=options)
    assert result.errors == [], result.errors
    described = [(f.rule, f.layer, f.severity, f.message) for f in result.findings]
    if kind in ("good", "healthy"):
        assert result.findings == [], f"unexpected findings: {described}"
        # Without --data, the rules that only measure the user's data are skipped, and say so.
        data_only = {r.name for r in rules if (r.tier == "probe" and r.needs == ("data",)) or "arrays" in r.needs} \
            if not case.data else set()
        live_only = {r.name for r in rules if "live" in r.needs}  # judged on a training run, not a file
        unexpected = [s for s in result.skipped if s["rule"] not in data_only | live_only]
        assert unexpected == [], f"rule skipped on a good case: {unexpected}"
        assert all(s["reason"].startswith(("needs --data", "needs a live training run"))
                   for s in result.skipped if s not in unexpected)
        return
    if case.skipped:
        assert [s["rule"] for s in result.skipped] == [rule_name]
        assert __import__("re").search(case.skipped, result.skipped[0]["reason"]), result.skipped
    remaining = list(result.findings)
    for expect in case.expect:
        hit = next((f for f in remaining if matches(f, expect)), None)
        if hit is None:
            near = [(f.layer, f.severity, f.message, check_evidence(f.evidence, expect.evidence)) for f in remaining]
            pytest.fail(f"no finding matches {expect}; findings: {near}")
        remaining.remove(hit)
        assert hit.rule == rule_name and hit.code.startswith("KC")
    assert remaining == [], f"findings beyond the expected ones: {[(f.layer, f.message) for f in remaining]}"
