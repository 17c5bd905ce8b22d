"""--cache DIR: an unchanged model's result is reused, a changed one is checked again, and a cache
file is data, never code."""
import os
import pickle
import shutil
import sys
import uuid

import fsspec

from helpers import HEALTHY, ROOT, json_report, kerascheck
from kerascheck.engine import ModelResult, select_rules
from kerascheck.options import Options
from kerascheck.reports import render
from kerascheck.reports.html import render_html
from kerascheck.runners import Listener, check_paths
from kerascheck.runners.cache import MAGIC, fingerprint

EXAMPLES = os.path.join(ROOT, "examples")


class Count(Listener):
    def __init__(self):
        self.cached, self.checked = [], []

    def finished(self, result, cached):
        (self.cached if cached else self.checked).append(os.path.basename(result.path))


def run(paths, cache, **kw):
    count = Count()
    report = check_paths(paths, select_rules(kw.pop("select", []), []), cache=str(cache), listener=count, **kw)
    return report, count


def entries(cache) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs if f.endswith(".pickle"))


def test_a_rerun_checks_only_what_changed(tmp_path):
    folder, cache = tmp_path / "models", tmp_path / "cache"
    folder.mkdir()
    for name in ("healthy.keras", "double_softmax.keras", "legacy_logits.h5"):
        shutil.copy(os.path.join(EXAMPLES, name), folder / name)
    cold, count = run([str(folder)], cache, static=True)
    assert (count.cached, len(count.checked)) == ([], 3)
    warm, count = run([str(folder)], cache, static=True)
    assert (sorted(count.cached), count.checked) == (["double_softmax.keras", "healthy.keras", "legacy_logits.h5"], [])
    for fmt in ("json", "text", "sarif"):
        assert render(warm, fmt) == render(cold, fmt)

    # Touched but unchanged: its size and time no longer vouch for it, its bytes still do.
    stamp = os.stat(folder / "legacy_logits.h5").st_mtime + 60
    os.utime(folder / "legacy_logits.h5", (stamp, stamp))
    _, count = run([str(folder)], cache, static=True)
    assert count.checked == []

    # The file changes under the same name: checked again, and its new findings reported.
    shutil.copy(os.path.join(EXAMPLES, "bad_init.keras"), folder / "healthy.keras")
    changed, count = run([str(folder)], cache, static=True)
    assert (sorted(count.cached), count.checked) == (["double_softmax.keras", "legacy_logits.h5"], ["healthy.keras"])
    assert {f.rule for f in changed.models[1].findings} == {"unhealthy-weights"}
    # A copy of a known model elsewhere is known by its bytes, and reported under its own path.
    shutil.copy(folder / "double_softmax.keras", tmp_path / "copy.keras")
    copied, count = run([str(tmp_path / "copy.keras")], cache, static=True)
    assert count.cached == ["copy.keras"] and copied.models[0].path == str(tmp_path / "copy.keras")
    # Other options are another cache: nothing reused.
    _, count = run([str(folder)], cache, static=True, select=["KC1"])
    assert count.cached == []


def test_a_cached_probe_result_renders_every_report_as_the_check_did(tmp_path):
    model = os.path.join(EXAMPLES, "double_softmax.keras")
    options = Options(budget=120, layer_stats=True)
    cold, count = run([model], tmp_path, options=options, select=["KC1", "KC2"])
    assert count.checked == ["double_softmax.keras"] and cold.models[0].probe is not None
    warm, count = run([model], tmp_path, options=options, select=["KC1", "KC2"])
    assert count.cached == ["double_softmax.keras"]
    assert json_report(warm.to_json()) == json_report(cold.to_json())
    assert render(warm, "text") == render(cold, "text")
    page = render_html(warm)
    assert "Loss while training at the configured rate" in page and "double_softmax.keras" in page


def test_a_tampered_cache_file_runs_nothing_and_is_replaced(tmp_path):
    cache, marker = tmp_path / "cache", tmp_path / "pwned"
    run([HEALTHY], cache, static=True)
    [entry] = entries(cache)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(entry, "wb") as fh:
        fh.write(MAGIC + pickle.dumps((HEALTHY, Payload())))
    report, count = run([HEALTHY], cache, static=True)
    assert not marker.exists()
    # Nor can an entry make anything import (kerascheck.__main__ would run the CLI) or reach NumPy's
    # reconstructors (a crafted dtype reads and writes memory it does not own).
    for payload in (b"ckerascheck.__main__\nmain\n)R.", b"cnumpy\ndtype\n(S'O8'\ntR."):
        with open(entry, "wb") as fh:
            fh.write(MAGIC + payload)
        _, count = run([HEALTHY], cache, static=True)
        assert count.checked == ["healthy.keras"] and "kerascheck.__main__" not in sys.modules
        with open(entry, "wb") as fh:
            fh.write(MAGIC + pickle.dumps((HEALTHY, Payload())))
    _, count = run([HEALTHY], cache, static=True)
    assert not marker.exists()
    assert count.checked == ["healthy.keras"] and report.models[0].errors == []
    _, count = run([HEALTHY], cache, static=True)  # the entry was written again, good this time
    assert count.cached == ["healthy.keras"]


def test_what_is_never_cached(tmp_path):
    cache = tmp_path / "cache"
    report, _ = run([HEALTHY], cache, static=True)
    # A check the runner gave up on says nothing certain about the file.
    from kerascheck.runners.cache import Cache

    store = Cache(str(cache), select_rules([], []), True, None)
    store.store(HEALTHY + ".other", ModelResult.unchecked(HEALTHY + ".other", "checking it took longer than --timeout 1 s"))
    assert len(entries(cache)) == 1
    # Results that --fix-out or a --data function would change are not reused at all.
    assert fingerprint([], False, Options(fix_out=str(tmp_path)))[0] is None
    assert fingerprint([], False, Options(data="mymodule:load"))[1] == ("--data names a function, whose arrays may "
                                                                       "differ from run to run")
    # --data's bytes are part of the key.
    data = tmp_path / "d.npz"
    data.write_bytes(b"one")
    first = fingerprint([], False, Options(data=str(data)))[0]
    data.write_bytes(b"two")
    assert fingerprint([], False, Options(data=str(data)))[0] != first


def test_another_version_never_reads_the_entries(tmp_path, monkeypatch):
    run([HEALTHY], tmp_path, static=True)
    monkeypatch.setattr("kerascheck.runners.cache.__version__", "99.0")
    _, count = run([HEALTHY], tmp_path, static=True)
    assert count.checked == ["healthy.keras"]
    assert sorted(d.split("-")[0] for d in os.listdir(tmp_path)) == ["0.1.0", "99.0"]


def test_a_bucket_rerun_fetches_only_what_changed(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/kc-{uuid.uuid4().hex[:8]}"
    for name in ("healthy.keras", "double_softmax.keras"):
        fs.pipe(f"{root}/{name}", open(os.path.join(EXAMPLES, name), "rb").read())
    url = f"memory://{root.lstrip('/')}"
    try:
        _, count = run([url], tmp_path, static=True)
        assert count.cached == []
        _, count = run([url], tmp_path, static=True)
        assert sorted(count.cached) == ["double_softmax.keras", "healthy.keras"]
        fs.pipe(f"{root}/healthy.keras", open(os.path.join(EXAMPLES, "bad_init.keras"), "rb").read())
        report, count = run([url], tmp_path, static=True)
        assert (count.cached, count.checked) == (["double_softmax.keras"], ["healthy.keras"])
        assert report.models[1].path == f"{url}/healthy.keras" and report.models[1].findings
    finally:
        fs.rm(root, recursive=True)


def test_the_cli_reuses_the_cache_and_says_so_with_verbose(tmp_path):
    args = ("--static", "--format", "json", "--cache", str(tmp_path), HEALTHY, os.path.join(EXAMPLES, "bad_init.keras"))
    cold = kerascheck(*args)
    warm = kerascheck(*args, "--verbose")
    assert json_report(warm.stdout) == json_report(cold.stdout) and warm.returncode == cold.returncode == 1
    assert warm.stderr == f"kerascheck: 2 of 2 results reused from the cache in {tmp_path}\n"
