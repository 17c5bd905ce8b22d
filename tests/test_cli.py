"""The command line as a user and a CI job see it."""
import os
import sys

import pytest

from helpers import ROOT, json_report, kerascheck
from kerascheck.engine import ModelResult, all_rules, run_rule
from kerascheck.rule import Facts, Rule

EXAMPLES = os.path.join(ROOT, "examples")


def ex(name):
    return os.path.join(EXAMPLES, name)


def test_static_run_imports_neither_tensorflow_nor_keras_and_unmarshals_nothing():
    probe = (
        "import sys, atexit, marshal\n"
        "calls = []\n"
        "real = marshal.loads\n"
        "def spy(*a, **k):\n"
        "    # Python's own import system unmarshals .pyc files; count every other caller.\n"
        "    if 'importlib' not in sys._getframe(1).f_code.co_filename:\n"
        "        calls.append(sys._getframe(1).f_code.co_filename)\n"
        "    return real(*a, **k)\n"
        "marshal.loads = spy\n"
        "def report():\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "    print('HEAVY=' + ','.join(heavy[:5]) + ' MARSHAL=' + str(len(calls)), file=sys.stderr)\n"
        "atexit.register(report)\n"
        "from kerascheck.cli import main\n"
        "main(['--static', '--format', 'json', sys.argv[1]])\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", probe, EXAMPLES], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "HEAVY= MARSHAL=0" in proc.stderr, proc.stderr
    report = json_report(proc.stdout)
    lam = next(m for m in report["models"] if m["path"].endswith("lambda_layer.keras"))
    assert [f["rule"] for f in lam["findings"]] == ["unsafe-code"]


def test_json_output_follows_the_design_contract():
    proc = kerascheck("--format", "json", ex("double_softmax.keras"), ex("healthy.keras"))
    assert proc.returncode == 1
    report = json_report(proc.stdout)
    assert set(report) == {"tool", "version", "models"} and report["tool"] == "kerascheck"
    bad, good = report["models"]
    assert set(bad) == {"path", "format", "findings", "skipped", "errors", "keras_version",
                        "parameters", "tiers", "rules_run", "rules_total", "notes", "probes"}
    assert bad["rules_run"] + len(bad["skipped"]) == bad["rules_total"]
    assert bad["format"] == "keras" and good["findings"] == [] and good["errors"] == []
    (finding,) = bad["findings"]
    assert set(finding) == {"rule", "code", "severity", "layer", "message", "fix", "evidence"}
    assert (finding["rule"], finding["code"], finding["severity"], finding["layer"]) == (
        "softmax-loss-mismatch", "KC202", "error", "probs")


def test_text_output_names_layer_number_fix_and_summarises():
    proc = kerascheck("--static", "--no-html", ex("bad_init.keras"))
    assert proc.returncode == 1
    out = proc.stdout
    assert "error   KC401 unhealthy-weights  layer zeros" in out
    assert "standard deviation 5.0" in out and "29x what He initialisation gives" in out
    assert "fix: Use a scaled initialiser" in out
    assert out.strip().splitlines()[-1] == "Found 2 problems (1 error, 1 warning) in 1 file."
    assert "\x1b[" not in out  # no colour when piped


def test_healthy_model_exits_0():
    proc = kerascheck(ex("healthy.keras"))
    assert proc.returncode == 0, proc.stdout
    assert "No problems found in 1 file." in proc.stdout


@pytest.mark.parametrize("args,rc", [
    ((), 1),  # warning (default) counts
    (("--fail-on", "error"), 0),
    (("--fail-on", "info"), 1),
])
def test_fail_on_threshold(args, rc):
    assert kerascheck("--static", *args, ex("rnn_without_clipping.keras")).returncode == rc


def test_select_and_ignore_by_name_code_and_prefix():
    def rules_found(*args):
        report = json_report(kerascheck("--static", "--format", "json", *args, EXAMPLES).stdout)
        return sorted({f["rule"] for m in report["models"] for f in m["findings"]})

    assert rules_found("--select", "KC2") == ["missing-rnn-clipping", "no-lr-schedule", "softmax-loss-mismatch"]
    assert rules_found("--select", "KC401,unsafe-code") == ["unhealthy-weights", "unsafe-code"]
    assert rules_found("--ignore", "KC2", "--ignore", "KC3") == ["unhealthy-weights", "unsafe-code"]


@pytest.mark.parametrize("args,phrase", [
    (("--select", "no-such-rule", "x.keras"), "unknown rule 'no-such-rule'"),
    (("--frobnicate", "x.keras"), "No such option '--frobnicate'"),
    (("--format", "yaml", "x.keras"), "'yaml' is not one of"),
    ((), "no PATH given"),
    (("--explain", "nope"), "unknown rule 'nope'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, phrase):
    proc = kerascheck(*args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("kerascheck: error: ") and phrase in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_rules_and_explain_come_from_the_rule_modules():
    listing = kerascheck("--list-rules").stdout.splitlines()
    assert len(listing) == len(all_rules())
    assert listing[0].split()[:4] == ["KC101", "unstable-softmax", "warning", "graph"]
    assert listing[2].split()[:4] == ["KC103", "nan-in-training", "error", "probe"]
    assert listing[3].split()[:4] == ["KC201", "missing-rnn-clipping", "warning", "spec"]
    doc = kerascheck("--explain", "KC202").stdout
    assert doc.startswith("softmax-loss-mismatch (KC202, default severity error, tier spec)")
    assert "## Why is this bad?" in doc and "## How to fix" in doc


def test_output_file(tmp_path):
    out = tmp_path / "report.json"
    proc = kerascheck("--static", "--format", "json", "--output", str(out), ex("healthy.keras"))
    assert proc.returncode == 0 and proc.stdout == ""
    assert json_report(out.read_text())["models"][0]["findings"] == []


def test_config_from_setup_cfg_and_pyproject(tmp_path):
    (tmp_path / "setup.cfg").write_text("[kerascheck]\nselect = KC401\nfail-on = error\nformat = json\n")
    report = json_report(kerascheck(EXAMPLES, cwd=str(tmp_path)).stdout)
    assert {f["rule"] for m in report["models"] for f in m["findings"]} == {"unhealthy-weights"}
    # pyproject.toml in the same folder wins; flags win over both.
    (tmp_path / "pyproject.toml").write_text('[tool.kerascheck]\nignore = ["KC4", "KC5"]\nfail-on = "error"\n')
    proc = kerascheck(EXAMPLES, "--static", "--format", "json", cwd=str(tmp_path))
    rules = {f["rule"] for m in json_report(proc.stdout)["models"] for f in m["findings"]}
    assert rules == {"missing-rnn-clipping", "no-lr-schedule", "softmax-loss-mismatch", "unscaled-inputs"}
    assert proc.returncode == 1  # two softmax-loss-mismatch errors
    (tmp_path / "pyproject.toml").write_text('[tool.kerascheck]\nselct = ["KC4"]\n')
    proc = kerascheck(EXAMPLES, cwd=str(tmp_path))
    assert proc.returncode == 2 and "unknown key 'selct'" in proc.stderr


def test_a_crashing_rule_is_reported_and_the_others_still_run(tmp_path):
    from kerascheck.formats import open_spec

    def broken(facts):
        raise ZeroDivisionError("boom")
        yield

    rule = Rule("broken-rule", "KC999", "warning", "spec", doc="x", check=broken)
    result = ModelResult(path="x")
    with open_spec(ex("bad_init.keras")) as spec:
        run_rule(rule, Facts(spec), result)
        run_rule(next(r for r in all_rules() if r.name == "unhealthy-weights"), Facts(spec), result)
    assert "internal error in rule broken-rule (ZeroDivisionError: boom" in result.errors[0]["message"]
    assert [f.layer for f in result.findings] == ["zeros", "huge"]


def test_rules_are_valid_and_documented():
    rules = all_rules()
    assert len({r.name for r in rules}) == len({r.code for r in rules}) == len(rules) >= 6
    with pytest.raises(ValueError, match="module must be named"):
        Rule("some-rule", "KC101", "error", "spec", doc=all_rules()[0].doc, check=lambda f: []).validate("other")
    with pytest.raises(ValueError, match="lacks a '## Why is this bad\\?' section"):
        Rule("some-rule", "KC101", "error", "spec", doc="Summary.\n## What it does\n## How to fix",
             check=lambda f: []).validate("some_rule")


def test_folder_without_models_warns_and_exits_0(tmp_path):
    (tmp_path / "readme.txt").write_text("no models here")
    proc = kerascheck(str(tmp_path))
    assert proc.returncode == 0
    assert proc.stderr.strip() == f"kerascheck: warning: no .keras, .h5 or .hdf5 files found under {tmp_path}"


def test_text_report_colours_severities_on_a_terminal():
    from kerascheck.engine import select_rules
    from kerascheck.runners import check_paths
    from kerascheck.reports.text import render_text

    report = check_paths([ex("bad_init.keras")], select_rules(), static=True)
    coloured = render_text(report, color=True)
    assert "\x1b[31m\x1b[1merror" in coloured and "\x1b[33m\x1b[1mwarning" in coloured
    assert render_text(report, color=False) == kerascheck("--static", "--no-html", ex("bad_init.keras")).stdout


def test_html_report_by_default_with_text_and_only_on_request_with_machine_formats(tmp_path):
    proc = kerascheck("--static", ex("healthy.keras"), cwd=str(tmp_path))
    assert proc.stdout.strip().endswith("HTML report: kerascheck-report.html")
    assert (tmp_path / "kerascheck-report.html").read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "kerascheck-report.html").unlink()
    json_report(kerascheck("--static", "--format", "json", ex("healthy.keras"), cwd=str(tmp_path)).stdout)
    kerascheck("--static", "--no-html", ex("healthy.keras"), cwd=str(tmp_path))
    assert not (tmp_path / "kerascheck-report.html").exists()
    proc = kerascheck("--static", "--format", "sarif", "--html", "r.html", ex("healthy.keras"), cwd=str(tmp_path))
    assert (tmp_path / "r.html").exists() and proc.stdout.startswith("{")
