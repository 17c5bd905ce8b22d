"""Models that hang or blow up memory cost one file (exit 2), not the run (the models: conftest's
`hostile` fixture)."""
import os

from helpers import HEALTHY, ROOT, json_report, kerascheck


def test_a_hanging_model_times_out_and_the_next_file_is_checked(hostile):
    paths, code = hostile
    proc = kerascheck("--format", "json", "--custom-objects", code, "--timeout", "12", "--select", "KC6",
                      paths["Sleeper"], HEALTHY)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"kerascheck: error: {paths['Sleeper']}: checking it took longer than "
                                   "--timeout 12 s and was stopped")
    sleeper, healthy = json_report(proc.stdout)["models"]
    assert sleeper["errors"] and healthy["errors"] == [] and healthy["findings"] == []


def test_a_model_that_eats_memory_is_stopped_at_the_limit(hostile):
    paths, code = hostile
    proc = kerascheck("--format", "json", "--custom-objects", code, "--max-memory", "2500", "--select", "KC6",
                      paths["Hoarder"], HEALTHY, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"kerascheck: error: {paths['Hoarder']}: checking it used more than 2500 MiB "
                                   "of memory (--max-memory) and was stopped")
    assert json_report(proc.stdout)["models"][1]["errors"] == []


def test_parallel_jobs_give_the_same_report():
    examples = [os.path.join(ROOT, "examples", name) for name in
                ("double_softmax.keras", "legacy_logits.h5")]

    def run(*args):
        models = json_report(kerascheck("--format", "json", "--select", "KC1,KC6,KC4", *args, *examples).stdout)
        for m in models["models"]:
            for f in m["findings"]:
                f["evidence"].pop("probe_seconds", None)
            if m.get("probes"):
                m["probes"].pop("seconds")  # the one figure a clock gives; verdicts never read it
        return models

    assert run("--jobs", "2") == run("--jobs", "1")
