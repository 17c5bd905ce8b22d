"""--format jsonl streams a model per line; the progress bar shows on a terminal's stderr only."""
import json
import os
import pty
import select
import subprocess
import sys

import jsonschema

from helpers import HEALTHY, ROOT, json_report, kerascheck, report_validator
from kerascheck.engine import ModelResult
from kerascheck.runners.progress import ProgressBar

EXAMPLES = os.path.join(ROOT, "examples")


def test_jsonl_is_the_json_report_a_model_per_line(tmp_path):
    whole = json_report(kerascheck("--static", "--format", "json", EXAMPLES).stdout)
    proc = kerascheck("--static", "--format", "jsonl", "-j", "2", EXAMPLES)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1 and proc.stderr == ""
    model_schema = {"$ref": "#/definitions/model", "definitions": report_validator().schema["definitions"]}
    models = [json.loads(line) for line in lines]
    for model in models:
        jsonschema.validate(model, model_schema)
    # Each line as it arrived; together, the report's models.
    assert sorted(models, key=lambda m: m["path"]) == sorted(whole["models"], key=lambda m: m["path"])
    # --output gets the same lines, and no HTML page is written unless asked for.
    out = tmp_path / "r.jsonl"
    proc = kerascheck("--static", "--format", "jsonl", "-o", str(out), HEALTHY, cwd=str(tmp_path))
    assert proc.stdout == "" and proc.returncode == 0
    assert [json.loads(x)["path"] for x in out.read_text().splitlines()] == [HEALTHY]
    assert os.listdir(tmp_path) == ["r.jsonl"]


def run_on_a_terminal(*args) -> tuple[int, str, str]:
    """kerascheck with stderr on a pseudo-terminal (stdout a pipe): (exit code, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kerascheck", *args], stdout=subprocess.PIPE, stderr=slave,
                            cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal's other end closed: the process is done with it
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    return proc.wait(60), out, seen.decode()


def test_the_progress_bar_is_drawn_on_a_terminal_and_erased(tmp_path):
    files = [HEALTHY, os.path.join(EXAMPLES, "bad_init.keras"), os.path.join(EXAMPLES, "legacy_logits.h5")]
    code, out, terminal = run_on_a_terminal("--static", "--no-html", *files)
    assert code == 1 and "unhealthy-weights" in out
    assert "kerascheck: [" in terminal and "3/3 files · 0 running" in terminal and "elapsed" in terminal
    assert terminal.endswith(" " * 40 + "\r")  # the last thing drawn is the blank that erases the bar
    # Not on a pipe, not with a machine format, not for one file.
    assert kerascheck("--static", "--no-html", *files).stderr == ""
    assert "files" not in run_on_a_terminal("--static", "--format", "json", *files)[2]
    assert "files" not in run_on_a_terminal("--static", "--no-html", HEALTHY)[2]


def test_the_bar_counts_and_estimates_from_the_checks_alone():
    class Sink:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    now = [100.0]
    bar = ProgressBar(Sink(), slots=2, now=lambda: now[0])
    bar.total, bar.start = 10, 100.0  # planned() without its redraw thread
    bad = ModelResult(path="b.keras")
    bad.errors.append({"message": "corrupt"})
    bar.finished(ModelResult(path="c.keras"), cached=True)
    for name in ("a.keras", "b.keras", "d.keras", "e.keras"):
        bar.started(name)
    now[0] = 130.0
    bar.finished(ModelResult(path="a.keras"), cached=False)
    bar.finished(bad, cached=False)
    # 2 checked in 30 s: 7 left at 15 s each; 2 more sent, both running.
    assert bar.line() == ("kerascheck: [#######.................] 3/10 files · 2 running · 1 failed · 1 cached · "
                          "0:30 elapsed · ~1:45 left")
