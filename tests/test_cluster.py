"""--scheduler: a Dask cluster gives the same report as a local run, and hostile files fail alone
without taking a worker down."""
import logging
import os
import shutil

import distributed
import pytest

from helpers import HEALTHY, ROOT, json_report, kerascheck
from hostile_corpus import build_corpus
from kerascheck.engine import select_rules
from kerascheck.options import Options
from kerascheck.reports import render
from kerascheck.runners import check_paths
from kerascheck.runners.cluster import local_workers
from kerascheck.runners.isolated import Limits

EXAMPLES = os.path.join(ROOT, "examples")


@pytest.fixture(scope="module")
def client():
    """Two worker processes, as `--scheduler local:2` starts them."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Healthy and buggy models, corrupt files, a SavedModel folder and every hostile file kerascheck knows."""
    folder = tmp_path_factory.mktemp("registry")
    for name in ("healthy.keras", "double_softmax.keras", "bad_init.keras", "legacy_logits.h5", "lambda_layer.keras"):
        shutil.copy(os.path.join(EXAMPLES, name), folder / name)
    (folder / "corrupt").mkdir()
    (folder / "corrupt" / "truncated.keras").write_bytes(open(HEALTHY, "rb").read()[:3000])
    (folder / "corrupt" / "empty.h5").write_bytes(b"")
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "savedmodel", "tfkeras_lambda"), folder / "exported")
    hostile = build_corpus(str(folder / "hostile"))
    return str(folder), hostile


def masked(value):
    """The report with the clock's figures blanked: the one thing two runs may differ in."""
    if isinstance(value, dict):
        return {k: "<seconds>" if k.endswith("seconds") else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def test_a_folder_checked_on_the_cluster_gives_the_local_report(client, registry):
    folder, hostile = registry
    rules = select_rules([], [])
    limits = Limits(timeout=60, memory_mb=2048, jobs=2)
    local = check_paths([folder], rules, static=True, limits=limits)
    remote = check_paths([folder], rules, static=True, limits=limits, scheduler=client)

    assert len(remote.models) == len(local.models) >= 10 + len(hostile) - 1
    assert json_report(remote.to_json()) == json_report(local.to_json())
    for fmt in ("text", "sarif", "github", "jsonl"):
        assert render(remote, fmt) == render(local, fmt), fmt
    by_path = {m.path: m for m in remote.models}
    assert by_path[os.path.join(folder, "corrupt", "empty.h5")].errors
    assert remote.exit_code() == 2
    # Every hostile file is still named as such, by the rule that reads it without running it.
    flagged = [h for h in hostile if h.refusal is None and h.cve is not None]
    assert flagged and all(any(f.rule == "unsafe-code" for f in by_path[h.path].findings) for h in flagged)


@pytest.mark.slow  # the folder test above covers the default suite; this one runs the probes on a cluster
def test_the_cli_on_a_local_cluster_equals_jobs_with_the_probes():
    models = [os.path.join(EXAMPLES, n) for n in ("double_softmax.keras", "legacy_logits.h5")]
    local = kerascheck("--format", "json", "--no-html", "--jobs", "2", *models, timeout=300)
    cluster = kerascheck("--format", "json", "--no-html", "--scheduler", "local:2", *models, timeout=300)
    assert (cluster.returncode, cluster.stderr) == (local.returncode, local.stderr) == (1, "")
    report = json_report(cluster.stdout)
    assert masked(report) == masked(json_report(local.stdout))
    assert [m["tiers"] for m in report["models"]] == [["spec", "model", "graph", "probe"]] * 2
    assert {f["rule"] for f in report["models"][0]["findings"]} >= {"softmax-loss-mismatch"}


def test_a_hanging_and_a_greedy_model_fail_alone_and_the_workers_survive(client, hostile):
    paths, code = hostile
    before = client.run(os.getpid)
    report = check_paths([paths["Sleeper"], paths["Hoarder"], HEALTHY], select_rules(["KC6"]),
                         options=Options(custom_objects=(code,)), limits=Limits(timeout=12, memory_mb=2500, jobs=2),
                         scheduler=client)
    sleeper, hoarder, healthy = report.models
    # The same messages as a local run (tests/test_isolation.py).
    assert sleeper.errors == [{"message": "checking it took longer than --timeout 12 s and was stopped"}]
    assert hoarder.errors == [{"message": "checking it used more than 2500 MiB of memory (--max-memory) and "
                                          "was stopped"}]
    assert healthy.errors == [] and healthy.findings == []
    assert client.run(os.getpid) == before  # the same two worker processes, neither restarted


def test_scheduler_errors_are_one_line(tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "distributed").mkdir(parents=True)
    (blocked / "distributed" / "__init__.py").write_text("raise ImportError('not installed here')\n")
    proc = kerascheck("--static", "--scheduler", "local:2", HEALTHY, env={"PYTHONPATH": str(blocked)})
    assert (proc.returncode, proc.stderr) == (2, "kerascheck: error: --scheduler needs Dask's distributed "
                                                 "package: pip install 'kerascheck[dask]'\n")
    assert proc.stdout == ""
    # The address may come from Dask's own variable; a malformed one is named.
    proc = kerascheck("--static", HEALTHY, env={"DASK_SCHEDULER_ADDRESS": "local:none"})
    assert (proc.returncode, proc.stderr) == (2, "kerascheck: error: --scheduler 'local:none': use local:N with N "
                                                 "a number of workers, or an address such as tcp://host:8786\n")
    # So may the project's file, after the variable; `--scheduler none` runs here whatever they say.
    (tmp_path / "pyproject.toml").write_text('[tool.kerascheck]\nscheduler = "local:0"\n')
    proc = kerascheck("--static", HEALTHY, cwd=str(tmp_path))
    assert proc.stderr.startswith("kerascheck: error: --scheduler 'local:0': use local:N")
    proc = kerascheck("--static", HEALTHY, cwd=str(tmp_path), env={"DASK_SCHEDULER_ADDRESS": "local:none"})
    assert proc.stderr.startswith("kerascheck: error: --scheduler 'local:none': use local:N")
    proc = kerascheck("--static", "--scheduler", "none", "--format", "json", HEALTHY, cwd=str(tmp_path),
                      env={"DASK_SCHEDULER_ADDRESS": "local:none"})
    assert (proc.returncode, proc.stderr) == (0, "") and json_report(proc.stdout)["models"][0]["errors"] == []
    # An address that merely starts with "local" is an address.
    assert local_workers("localhost:8786") is None and local_workers("local:3") == 3
