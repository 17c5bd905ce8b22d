"""SARIF and GitHub annotations for CI, and the workflow and pre-commit hook that use them."""
import json
import os
import re
import shlex
import shutil

import jsonschema
import yaml

from helpers import REPORT_SCHEMA, ROOT, json_report, kerascheck, layer_config, rewrite_archive

EXAMPLES = os.path.join(ROOT, "examples")
SCHEMA = json.load(open(os.path.join(ROOT, "tests", "data", "sarif-schema-2.1.0.json")))


def sarif(*args, cwd=ROOT):
    proc = kerascheck("--static", "--format", "sarif", *args, cwd=cwd)
    return proc, json.loads(proc.stdout)


def test_sarif_validates_and_has_what_github_code_scanning_needs(tmp_path):
    proc, log = sarif("examples", str(tmp_path / "missing.keras"))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert proc.returncode == 2 and log["$schema"] and log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for rule in rules.values():
        assert rule["shortDescription"]["text"] and "## Why is this bad?" in rule["fullDescription"]["text"]
        assert "## How to fix" in rule["help"]["text"]
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"KC202", "KC401", "KC501", "KC201"}
    zeros = next(r for r in results if r["ruleId"] == "KC401" and "layer zeros" in r["message"]["text"])
    (location,) = zeros["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "examples/bad_init.keras"
    assert location["physicalLocation"]["region"]["startLine"] == 1
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "zeros"
    assert rules[zeros["ruleId"]]["name"] == "unhealthy-weights" and zeros["level"] == "error"
    fingerprints = [r["partialFingerprints"]["kerascheckFinding/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and "no such file" in note["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is False


def test_sarif_fingerprints_survive_changed_numbers(tmp_path):
    """A finding keeps its identity across runs even when the measured numbers differ."""
    import keras

    def model(stddev):
        m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(
            64, name="wide", kernel_initializer=keras.initializers.RandomNormal(stddev=stddev))])
        m.compile(optimizer="adam", loss="mse")
        return m

    prints = []
    for stddev in (5.0, 7.0):
        os.makedirs(tmp_path / "models", exist_ok=True)
        model(stddev).save(tmp_path / "models" / "m.keras")
        _, log = sarif("--select", "unhealthy-weights", "models", cwd=str(tmp_path))
        (result,) = log["runs"][0]["results"]
        prints.append((result["partialFingerprints"], result["message"]["text"]))
    assert prints[0][0] == prints[1][0] and prints[0][1] != prints[1][1]


def test_github_annotations_escape_what_comes_from_the_file(tmp_path):
    hostile = "evil\n::error file=pwned.py::injected,50%:x"

    def edit(cfg):
        entry = layer_config(cfg, "zeros")
        entry["config"]["name"] = hostile
        entry["name"] = hostile
    path = rewrite_archive(os.path.join(EXAMPLES, "bad_init.keras"), str(tmp_path / "a,b:c%.keras"), config=edit)
    proc = kerascheck("--static", "--format", "github", "--select", "unhealthy-weights", path)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(re.match(r"^::(error|warning|notice) file=", line) for line in lines)
    # The newline is escaped, so the injected text stays inside the first annotation's message.
    assert not any(line.startswith("::error file=pwned.py") for line in lines)
    assert "evil%0A::error file=pwned.py::injected,50%25:x" in lines[0]  # message: only % CR LF escaped
    assert lines[0].startswith(f"::error file={tmp_path}/a%2Cb%3Ac%25.keras,line=1,title=KC401 unhealthy-weights::")


def test_the_example_workflow_and_pre_commit_hook_run_what_they_say(tmp_path):
    workflow = yaml.safe_load(open(os.path.join(EXAMPLES, "ci", "kerascheck.yml")))
    step = next(s for s in workflow["jobs"]["models"]["steps"] if s.get("name") == "kerascheck")
    upload = next(s for s in workflow["jobs"]["models"]["steps"] if "upload-sarif" in s.get("uses", ""))
    shutil.copytree(EXAMPLES, tmp_path / "models", ignore=shutil.ignore_patterns("*.py", "ci"))
    argv = shlex.split(step["run"])
    assert argv[0] == "kerascheck"
    proc = kerascheck("--static", *argv[1:], cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr  # findings at error severity in the examples
    log = json.load(open(tmp_path / upload["with"]["sarif_file"]))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["runs"][0]["results"]

    (hook,) = yaml.safe_load(open(os.path.join(ROOT, ".pre-commit-hooks.yaml")))
    assert hook["id"] == "kerascheck" and re.search(hook["files"], "model.keras") and re.search(hook["files"], "m.h5")
    entry = shlex.split(hook["entry"])
    assert entry[0] == "kerascheck"
    staged = [os.path.join(EXAMPLES, "healthy.keras"), os.path.join(EXAMPLES, "bad_init.keras")]
    proc = kerascheck(*entry[1:], *staged)
    assert proc.returncode == 1 and "unhealthy-weights" in proc.stdout
    assert kerascheck(*entry[1:], staged[0]).returncode == 0


def test_the_report_schema_is_draft_7_and_the_readme_links_it():
    """docs/report.schema.json is the contract of --format json: a valid Draft 7 schema, linked from the README."""
    with open(REPORT_SCHEMA) as fh:
        schema = json.load(fh)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set(schema["required"]) == {"tool", "version", "models"}
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    assert "](docs/report.schema.json)" in readme
    assert not os.path.exists(os.path.join(ROOT, "reports", "report.schema.json"))  # one copy of the contract


def test_json_validates_against_its_schema_and_records_the_probes(tmp_path):
    """The published schema (docs/report.schema.json) holds for findings, errors and the probe record."""
    proc = kerascheck("--format", "json", "--select", "KC6,KC2", os.path.join(EXAMPLES, "double_softmax.keras"),
                      os.path.join(EXAMPLES, "rnn_without_clipping.keras"), str(tmp_path / "missing.keras"))
    report = json_report(proc.stdout)  # parses and validates against docs/report.schema.json
    assert proc.returncode == 2
    softmax, rnn, missing = report["models"]
    assert missing["errors"] and missing["probes"] is None
    probes = rnn["probes"]
    assert probes["data"]["synthetic_inputs"] and probes["data"]["inputs"]
    assert probes["training"]["losses"][0]["loss"] == "binary_crossentropy"
    assert probes["training"]["optimizer"] == "Adam" and not probes["training"]["assumed"]
    runs = {r["probe"]: r for r in probes["runs"]}
    assert runs["train"]["steps_done"] == runs["train"]["steps_planned"] == 100 and not probes["cut_by_budget"]
    assert rnn["tiers"][:2] == ["spec", "model"] and "probe" in rnn["tiers"]
    assert rnn["rules_run"] == rnn["rules_total"] - len(rnn["skipped"])
