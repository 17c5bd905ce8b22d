"""Which hostile files run their payload on older Keras 3 releases, loaded in safe mode.

    python bench/old_keras.py [--versions 3.14.1,3.8.0,...] [--venvs /tmp/kc-old-keras]

The file is audited for whatever loads it next, often an older Keras on the serving
side. This script builds the corpus of tests/hostile_corpus.py, makes a throwaway
virtual environment per Keras release under --venvs (the release installed with
`pip install --no-deps keras==X`; TensorFlow and the other dependencies come from this
interpreter's site-packages through a .pth file, so every release meets the same
TensorFlow), and loads every file there with `keras.models.load_model(path,
safe_mode=True)` in a forked child, in a scratch folder and with HOME pointing there.
Payloads are inert: run, they create a marker file. A payload "ran" when its marker
exists after the load.

It prints one row per file (RAN where the payload ran, `.` where it did not, `-` where
the payload cannot run by itself), one column per release, and kerascheck's verdict
(`kerascheck --static --format json`; `exit 2` where it refuses the file), then checks
the claim that matters: every file that runs a payload on any release is an
unsafe-code error in kerascheck. The one exception it lists apart: a module that is
neither Python's, a known library's nor Keras's reads, to kerascheck, like the user's
own package; it is never imported, and loading is refused with exit 2 ("needs the
custom class"), but it is no error. Exit 1 if any other file runs a payload unflagged.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

# The newest patch of every Keras 3 minor release before the installed one.
VERSIONS = ["3.0.5", "3.1.1", "3.2.1", "3.3.3", "3.4.1", "3.5.0", "3.6.0", "3.7.0", "3.8.0", "3.9.2", "3.10.0",
            "3.11.3", "3.12.4", "3.13.2", "3.14.1"]

LOADER = r'''
import json, os, shutil, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras  # imported once; every file is loaded in a forked child
corpus = json.load(open(sys.argv[1]))
scratch = sys.argv[2]
results = {}
for case in corpus:
    mark = case["marker"]
    if mark and os.path.isdir(mark):
        shutil.rmtree(mark)
    elif mark and os.path.exists(mark):
        os.remove(mark)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.chdir(scratch)
        os.environ["HOME"] = scratch
        for path in filter(None, case["env"].get("PYTHONPATH", "").split(os.pathsep)):
            sys.path.insert(0, path)
        try:
            keras.models.load_model(case["path"], safe_mode=True)
            outcome = "loaded"
        except BaseException as exc:
            text = " ".join(str(exc).split())
            cause = text.rsplit("Exception encountered: ", 1)[-1]  # Keras wraps the real error
            outcome = f"{type(exc).__name__}: {cause[:200]}"
        os.write(write, outcome.encode("utf-8", "replace")[:4000])
        os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    ran = bool(mark) and os.path.exists(mark)
    results[case["name"]] = {"ran": ran, "outcome": b"".join(chunks).decode() or "child died"}
print("RESULTS " + json.dumps({"version": keras.__version__, "results": results}))
'''


def venv_python(root: str, version: str, log) -> str | None:
    """The python of a throwaway venv holding keras==version over this interpreter's packages."""
    env = os.path.join(root, f"keras-{version}")
    python = os.path.join(env, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", env], check=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "zz_kerascheck_base.pth"), "w") as fh:
        fh.write(sysconfig.get_paths()["purelib"] + "\n")
    have = subprocess.run([python, "-m", "pip", "show", "keras"], capture_output=True, text=True).stdout
    if f"Version: {version}\n" not in have:
        wanted = [f"keras=={version}"]
        proc = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", *wanted],
                              capture_output=True, text=True)
        if proc.returncode:
            log.append(f"keras {version}: pip install failed: {proc.stderr.strip().splitlines()[-1:]}")
            return None
    if tuple(int(p) for p in version.split(".")[:2]) < (3, 4):  # these import dm-tree
        subprocess.run([python, "-m", "pip", "install", "-q", "dm-tree"], capture_output=True, text=True)
    return python


def run_loader(python: str, index: str, scratch: str) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_HOME")}
    proc = subprocess.run([python, "-c", LOADER, index, scratch], capture_output=True, text=True, env=env,
                          timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULTS "):
            return json.loads(line[len("RESULTS "):])
    sys.stderr.write(proc.stderr[-2000:])
    return None


def kerascheck_verdicts(paths: list, static: bool = True, env: dict | None = None) -> dict:
    """kerascheck's answer per file: "error CVEs", "exit 2" or "clean"."""
    proc = subprocess.run([sys.executable, "-m", "kerascheck", *(["--static"] if static else []), "--format",
                           "json", "--no-html", *paths], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    verdicts = {}
    for model in json.loads(proc.stdout)["models"]:
        errors = [f for f in model["findings"] if f["rule"] == "unsafe-code" and f["severity"] == "error"]
        cves = sorted({f["evidence"].get("cve") for f in errors if f["evidence"].get("cve")})
        name = os.path.basename(model["path"])
        if errors:
            verdicts[name] = "error " + ",".join(c.replace("CVE-", "") for c in cves) if cves else "error"
        elif model["errors"]:
            verdicts[name] = "exit 2"
        else:
            verdicts[name] = "clean (static)" if static else "clean"
    return verdicts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--venvs", default=os.path.join(tempfile.gettempdir(), "kc-old-keras"))
    parser.add_argument("--show", action="store_true", help="print how each load ended")
    args = parser.parse_args()
    os.makedirs(args.venvs, exist_ok=True)
    log: list = []
    with tempfile.TemporaryDirectory(prefix="kc-old-keras-") as tmp:
        from hostile_corpus import build_corpus

        clean: list = []
        corpus = build_corpus(os.path.join(tmp, "corpus"), clean)
        index = os.path.join(tmp, "index.json")
        with open(index, "w") as fh:
            json.dump([{"name": h.name, "path": h.path, "marker": h.marker, "env": h.env} for h in corpus]
                      + [{"name": os.path.basename(p), "path": p, "marker": None, "env": {}} for p in clean], fh)
        columns = []
        import keras

        targets = [(v, None) for v in args.versions.split(",") if v] + [(keras.__version__, sys.executable)]
        for version, python in targets:
            python = python or venv_python(args.venvs, version, log)
            if python is None:
                continue
            scratch = os.path.join(tmp, f"scratch-{version}")
            os.makedirs(scratch)
            result = run_loader(python, index, scratch)
            if result is None:
                log.append(f"keras {version}: the loader did not finish")
                continue
            columns.append(result)
            shutil.rmtree(scratch, ignore_errors=True)
        verdicts = kerascheck_verdicts([h.path for h in corpus])
        # Refusals happen where Keras would be asked to load the file: all tiers.
        planted = [h for h in corpus if h.refusal]
        if planted:
            verdicts.update(kerascheck_verdicts([h.path for h in planted], static=False, env=planted[0].env))

    versions = [c["version"] for c in columns]
    base_ok = [c["version"] for c in columns
               if all(c["results"][name]["outcome"] == "loaded" for name in ("_clean.keras", "_clean.h5"))]
    width = max(len(h.name) for h in corpus)
    print(f"{'file':{width}s}  " + " ".join(f"{v:>6s}" for v in versions) + "  kerascheck")
    executed, missed, refused = [], [], []
    for h in corpus:
        cells = []
        for column in columns:
            r = column["results"][h.name]
            cells.append("RAN" if r["ran"] else ("-" if not h.marker else "."))
        ran_on = [v for v, cell in zip(versions, cells) if cell == "RAN"]
        verdict = verdicts.get(h.name, "?")
        if ran_on:
            executed.append(h.name)
            line = f"{h.name} (ran on {', '.join(ran_on)}; kerascheck: {verdict})"
            if h.refusal and verdict == "exit 2":
                refused.append(line)  # a module kerascheck cannot tell from the user's own package
            elif not verdict.startswith("error"):
                missed.append(line)
        print(f"{h.name:{width}s}  " + " ".join(f"{c:>6s}" for c in cells) + f"  {verdict}")
        if args.show:
            for column in columns:
                print(f"    {column['version']:>7s}: {column['results'][h.name]['outcome']}")
    print(f"\nreleases: {len(columns)} ({', '.join(versions)}); the payload-free base model (.keras and .h5) loaded on {len(base_ok)}")
    print(f"files: {len(corpus)}; payloads that ran on some release: {len(executed)}; of those, unsafe-code "
          f"errors in kerascheck: {len(executed) - len(missed) - len(refused)}, refused with exit 2 "
          f"(a module kerascheck takes for the user's own code, never imported): {len(refused)}")
    for line in refused:
        print("  refused, not an unsafe-code error:", line)
    for line in missed:
        print("  not an unsafe-code error:", line)
    for line in log:
        print("  ", line)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
