"""PATH as an fsspec URL: a `memory://` filesystem stands for a bucket. Models are listed where they
are, copied by the process that checks them, and the reports name the URL."""
import json
import logging
import os
import uuid

import distributed
import fsspec
import pytest

from helpers import HEALTHY, ROOT, json_report, kerascheck
from kerascheck.engine import select_rules
from kerascheck.runners import check_paths
from kerascheck.runners.isolated import Limits
from kerascheck.runners.sources import expand_paths, local_copy, sha256_of

EXAMPLES = os.path.join(ROOT, "examples")
SAVED = os.path.join(ROOT, "tests", "fixtures", "savedmodel", "tfkeras_lambda")
NAMES = ("healthy.keras", "double_softmax.keras", "legacy_logits.h5", "lambda_layer.keras")


@pytest.fixture()
def bucket(tmp_path):
    """The same registry twice: in a memory:// bucket and in a local folder."""
    fs = fsspec.filesystem("memory")
    root = f"/kc-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "registry"
    files = {f"models/{n}": open(os.path.join(EXAMPLES, n), "rb").read() for n in NAMES}
    files["models/corrupt/broken.keras"] = b"PK\x03\x04 not really a zip"
    files["models/.cache/skipped.keras"] = b"a hidden folder is not searched"
    files["models/README.md"] = b"not a model"
    files["models/a/../../escape.keras"] = b"a key naming a place outside its folder once copied"
    for dirpath, _, names in os.walk(SAVED):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), SAVED).replace(os.sep, "/")
            files[f"models/exported/{rel}"] = open(os.path.join(dirpath, n), "rb").read()
    for rel, data in files.items():
        fs.pipe(f"{root}{'/'}{rel}", data)
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    yield f"memory://{root.lstrip('/')}/models", str(local / "models"), fs
    fs.rm(root, recursive=True)


def as_local(report: dict, url: str, folder: str) -> dict:
    """The report with every mention of the URL (paths, a finding's source file) made local."""
    return json.loads(json.dumps(report).replace(url, folder))


def test_a_bucket_is_listed_like_a_folder(bucket):
    url, folder, _ = bucket
    found = expand_paths([url + "/"])
    assert found == [url + "/" + p[len(folder) + 1:] for p in expand_paths([folder])]
    # As os.walk goes: a folder's SavedModels, its files, then its subfolders; hidden folders and
    # files that are no model left out.
    assert [p[len(url) + 1:] for p in found] == [
        "exported", "double_softmax.keras", "healthy.keras", "lambda_layer.keras", "legacy_logits.h5",
        "corrupt/broken.keras"]


def test_a_bucket_checked_by_workers_and_on_a_cluster_reports_the_urls(bucket):
    url, folder, _ = bucket
    rules = select_rules([], [])
    limits = Limits(timeout=60, memory_mb=2048, jobs=2)
    local = json_report(check_paths([folder], rules, static=True, limits=limits).to_json())
    pooled = check_paths([url], rules, static=True, limits=limits)
    # Threads, not processes: memory:// lives in this process; the checks still run isolated.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        clustered = check_paths([url], rules, static=True, limits=limits, scheduler=client)
    for report in (pooled, clustered):
        assert all(m.path.startswith(url + "/") for m in report.models)
        assert as_local(json_report(report.to_json()), url, folder) == local
        exported = next(m for m in report.models if m.path.endswith("/exported"))
        assert exported.findings[0].evidence["source"]["file"] == url + "/exported/keras_metadata.pb"
    broken = next(m for m in clustered.models if m.path.endswith("broken.keras"))
    assert broken.errors and url in broken.path
    assert next(m for m in pooled.models if m.path.endswith("/exported")).format == "savedmodel"


def test_the_cli_names_a_missing_url_and_goes_on(tmp_path):
    missing = f"file://{tmp_path}/nowhere/model.keras"
    proc = kerascheck("--static", "--format", "json", missing, HEALTHY)
    assert proc.returncode == 2
    assert proc.stderr == f"kerascheck: error: {missing}: cannot fetch it: no such file or folder\n"
    assert [m["errors"] == [] for m in json_report(proc.stdout)["models"]] == [False, True]


def test_a_copy_is_private_hashed_like_the_original_and_removed(bucket, monkeypatch):
    url, folder, fs = bucket
    with local_copy(url + "/exported") as (copy, digest):
        assert digest == sha256_of(os.path.join(folder, "exported"))
        assert os.stat(os.path.dirname(copy)).st_mode & 0o077 == 0
        assert sorted(os.listdir(copy)) == sorted(os.listdir(SAVED))
    assert not os.path.exists(copy)
    # A model larger than the limit is refused before a byte is written.
    monkeypatch.setattr("kerascheck.runners.sources.MAX_FETCH_BYTES", 1000)
    report = check_paths([url + "/healthy.keras"], select_rules([], []), static=True)
    assert report.models[0].errors == [{"message": f"cannot fetch it: it is "
                                                   f"{os.path.getsize(HEALTHY) / 1024:.1f} KiB, larger than "
                                                   "1000 B, the most kerascheck copies"}]
