"""rules/ and reports/ install as kerascheck.rules and kerascheck.reports, in a wheel and editable."""
import glob
import os
import subprocess
import sys
import sysconfig
import zipfile

from helpers import ROOT

PROBE = ("import kerascheck.rules, kerascheck.reports, kerascheck.engine as e; "
         "print(kerascheck.rules.__file__); print(kerascheck.reports.__file__); "
         "print(len(e.all_rules()))")


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _rule_count():
    return len(glob.glob(os.path.join(ROOT, "rules", "[a-z]*.py")))


def test_wheel_holds_the_mapped_packages_and_no_top_level_rules(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp_path / "dist"), ROOT])
    (wheel,) = glob.glob(str(tmp_path / "dist" / "kerascheck-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "kerascheck/rules/unsafe_code.py" in names and "kerascheck/reports/text.py" in names
    # Every tier folder, so an installed kerascheck is the one the tests ran.
    assert "kerascheck/tiers/probe/train.py" in names and "kerascheck/formats/savedmodel/audit.py" in names
    assert not [n for n in names if n.split("/")[0] in ("rules", "reports", "tests", "examples", "bench")]
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"), wheel])
    out = _run([sys.executable, "-c", PROBE], cwd=str(tmp_path),
               env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}).split()
    assert out[0] == str(tmp_path / "site" / "kerascheck" / "rules" / "__init__.py")
    assert out[1] == str(tmp_path / "site" / "kerascheck" / "reports" / "__init__.py")
    assert int(out[2]) == _rule_count()


def test_editable_install_maps_to_the_source_folders(tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    # Borrow this environment's dependencies, but not its own kerascheck install:
    # a path line in a .pth file adds the folder without running the .pth files in it.
    purelib = sysconfig.get_paths()["purelib"]
    target_lib = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))[0]
    with open(os.path.join(target_lib, "borrowed.pth"), "w") as fh:
        fh.write(purelib + "\n")
    python = str(venv / "bin" / "python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-build-isolation",
          "-q", "-e", ROOT])
    out = _run([python, "-c", PROBE], cwd=str(tmp_path)).split()
    assert out[0] == os.path.join(ROOT, "rules", "__init__.py")
    assert out[1] == os.path.join(ROOT, "reports", "__init__.py")
    assert int(out[2]) == _rule_count()
