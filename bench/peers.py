"""kerascheck beside the dedicated model scanners, over the tests' hostile corpus.

    python bench/peers.py [--venv /tmp/kc-peers]

Builds the corpus of tests/hostile_corpus.py (the config shapes of
tests/test_hostile_configs.py and the layer, name, archive and HDF5 shapes of
tests/test_hostile.py), installs modelaudit and modelscan from the package registry
into a throwaway virtual environment (`modelaudit[h5]`, `modelscan[tensorflow,h5py]`,
so that neither skips a scanner for a missing extra), and runs the three tools with
telemetry off (PROMPTFOO_DISABLE_TELEMETRY=1, HOME in a scratch folder; the machine has
no network beyond the registry anyway).

A tool "flags" a file when it does not pass it as clean:
  kerascheck   an unsafe-code finding at warning or error, or exit 2 for the file
               (all tiers, the default run);
  modelaudit   an issue at warning or critical (its info notes do not count);
  modelscan    any issue.
The payload-free base files are rows too: flagging them is a false positive.

Prints one row per file and the summary line
  kerascheck flags N/M, modelaudit X/M, modelscan Y/M, files a peer flags that kerascheck misses: K
Exit 1 when K > 0 or N < M.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

PEERS = ("modelaudit[h5]", "modelscan[tensorflow,h5py]")


def peer_venv(path: str) -> str:
    bin_dir = os.path.join(path, "bin")
    if not os.path.exists(os.path.join(bin_dir, "modelaudit")) or not os.path.exists(os.path.join(bin_dir, "modelscan")):
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", path], check=True)
        subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "install", "-q", *PEERS], check=True)
    return bin_dir


def versions(bin_dir: str) -> str:
    out = subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "list", "--format", "json"],
                         capture_output=True, text=True).stdout
    have = {p["name"].lower(): p["version"] for p in json.loads(out or "[]")}
    return f"modelaudit {have.get('modelaudit', '?')}, modelscan {have.get('modelscan', '?')}"


def by_file(location: str, names: set) -> str | None:
    """The corpus file an issue's location or source names ('x.keras', 'x.keras:config.json', '/d/x.keras (...)')."""
    base = os.path.basename(location.split(" (")[0]).split(":")[0]
    return base if base in names else None


def run_modelaudit(bin_dir, folder, names, env) -> dict:
    proc = subprocess.run([os.path.join(bin_dir, "modelaudit"), "scan", "--no-cache", "--format", "json", folder],
                          capture_output=True, text=True, env=env, timeout=1800)
    flagged: dict = {}
    for issue in json.loads(proc.stdout)["issues"]:
        name = by_file(issue.get("location") or "", names)
        if name and issue.get("severity") in ("warning", "critical"):
            flagged.setdefault(name, issue["message"])
    return flagged


def run_modelscan(bin_dir, folder, names, env, tmp) -> dict:
    report = os.path.join(tmp, "modelscan.json")
    subprocess.run([os.path.join(bin_dir, "modelscan"), "-p", folder, "-r", "json", "-o", report],
                   capture_output=True, text=True, env=env, timeout=1800)
    flagged: dict = {}
    with open(report) as fh:
        data = json.load(fh)
    for issue in data.get("issues", []):
        name = by_file(issue.get("source") or "", names)
        if name:
            flagged.setdefault(name, issue.get("description", ""))
    return flagged


def run_kerascheck(paths, env) -> dict:
    proc = subprocess.run([sys.executable, "-m", "kerascheck", "--format", "json", "--no-html", *paths],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=1800)
    flagged: dict = {}
    for model in json.loads(proc.stdout)["models"]:
        name = os.path.basename(model["path"])
        hits = [f for f in model["findings"] if f["rule"] == "unsafe-code" and f["severity"] in ("error", "warning")]
        if hits:
            cves = sorted({f["evidence"].get("cve") for f in hits if f["evidence"].get("cve")})
            flagged[name] = f"{hits[0]['severity']} {','.join(cves)}".strip()
        elif model["errors"]:
            flagged[name] = "exit 2"
    return flagged


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", default=os.path.join(tempfile.gettempdir(), "kc-peers"))
    args = parser.parse_args()
    bin_dir = peer_venv(args.venv)
    with tempfile.TemporaryDirectory(prefix="kc-peers-") as tmp:
        from hostile_corpus import build_container_corpus, build_corpus

        folder = os.path.join(tmp, "corpus")
        clean: list = []
        corpus = build_corpus(folder, clean) + build_container_corpus(os.path.join(folder, "containers"))
        # Only the files of the corpus, in one folder the peers can scan at once.
        scan = os.path.join(tmp, "scan")
        os.makedirs(scan)
        hostile = {}
        for h in corpus:
            os.link(h.path, os.path.join(scan, h.name))
            hostile[h.name] = h
        clean_names = []
        for path in clean:
            name = "clean" + os.path.splitext(path)[1]
            os.link(path, os.path.join(scan, name))
            clean_names.append(name)
        names = set(hostile) | set(clean_names)
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "HOME": home, "NO_COLOR": "1",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        audit = run_modelaudit(bin_dir, scan, names, env)
        modelscan = run_modelscan(bin_dir, scan, names, env, tmp)
        planted = next((h.env for h in corpus if h.env), {})
        ours = run_kerascheck([os.path.join(scan, n) for n in sorted(names)], planted)

    width = max(len(n) for n in names)
    print(f"peers: {versions(bin_dir)}")
    print(f"{'file':{width}s}  {'kerascheck':22s} {'modelaudit':10s} {'modelscan':9s}")
    missed = []
    order = [h.name for h in corpus] + clean_names
    for name in order:
        k, a, s = ours.get(name, "-"), "flags" if name in audit else "-", "flags" if name in modelscan else "-"
        print(f"{name:{width}s}  {k:22s} {a:10s} {s:9s}")
        if name in hostile and name not in ours and (name in audit or name in modelscan):
            missed.append(name)
    m = len(hostile)
    n = sum(1 for name in hostile if name in ours)
    x = sum(1 for name in hostile if name in audit)
    y = sum(1 for name in hostile if name in modelscan)
    false = {tool: [c for c in clean_names if c in flagged]
             for tool, flagged in (("kerascheck", ours), ("modelaudit", audit), ("modelscan", modelscan))}
    print(f"\npayload-free base files flagged: " + ", ".join(f"{t} {len(v)}/{len(clean_names)}"
                                                            for t, v in false.items()))
    print(f"kerascheck flags {n}/{m}, modelaudit {x}/{m}, modelscan {y}/{m}, "
          f"files a peer flags that kerascheck misses: {len(missed)}")
    for name in missed:
        print("  missed:", name, "-", audit.get(name) or modelscan.get(name))
    sys.exit(1 if missed or n < m else 0)


if __name__ == "__main__":
    main()
