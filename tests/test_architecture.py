"""The shape of the code (docs/architecture.md): no import circles between kerascheck's modules, no
module importing another's private names, TensorFlow imported only inside functions (so --static
never loads it), and the pipeline's folders where the architecture page says they are."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The installed names of the folders setup.cfg maps into the package.
MAPPED = {"rules": "kerascheck.rules", "reports": "kerascheck.reports"}


def _modules() -> dict:
    """Dotted module name (as installed) -> path, for kerascheck/, rules/ and reports/."""
    out = {}
    for top in ("kerascheck", "rules", "reports"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[: -len(".__init__")]
                head, _, rest = rel.partition(".")
                dotted = MAPPED.get(head, head) + (f".{rest}" if rest else "")
                out[dotted] = path
    return out


def _imports(modules: dict):
    """(importer, imported module, imported name or None, at top level) for every import statement,
    at module level or inside a function, of one of `modules`."""
    for module, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        package = path.endswith("__init__.py")
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = module.split(".") if package else module.split(".")[:-1]
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:
                        yield module, full, None, id(node) in top
                    elif base in modules:
                        yield module, base, alias.name, id(node) in top
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        yield module, alias.name, None, id(node) in top


def _cycles(edges: dict) -> list:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges.get(v, ()):
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_kerascheck_modules():
    """Counting imports inside functions too: a lazy import that closes a circle is still a circle."""
    modules = _modules()
    edges: dict = {}
    for importer, imported, _, _ in _imports(modules):
        if imported != importer:
            edges.setdefault(importer, set()).add(imported)
    assert len(modules) > 60 and sum(len(v) for v in edges.values()) > 100  # the analysis sees the code
    assert _cycles(edges) == []
    # The engine checks one model; how files are run is the runners' (chosen by the CLI and the API).
    assert not [m for m in edges["kerascheck.engine"] if m.startswith("kerascheck.runners")]
    assert {m.split(".")[1] for importer, found in edges.items() if importer.startswith("kerascheck.facts.")
            for m in found if not m.startswith("kerascheck.facts.")} <= {"errors"}


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    private = [(importer, f"{imported}.{name}") for importer, imported, name, _ in _imports(modules)
               if name is not None and name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_tensorflow_is_imported_only_inside_functions():
    """The boundary kerascheck.backend writes down: only the Monitor, a Keras callback, imports
    TensorFlow or Keras at module level; everything a --static run imports stays free of them."""
    at_top = []
    for module, path in _modules().items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in ("tensorflow", "keras") for n in names):
                at_top.append(module)
    assert at_top and all(m == "kerascheck.monitor" or m.startswith("kerascheck.monitor.") for m in at_top), at_top
    code = ("import sys, kerascheck.cli, kerascheck.engine, kerascheck.runners, kerascheck.api, kerascheck.reports.html;"
            "from kerascheck.engine import all_rules; all_rules();"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_module_imports_on_its_own_without_tensorflow():
    """Each module imported first, into an interpreter with no kerascheck module loaded: a circle that
    only a package's __init__ closes (importing a.b.c runs a/b/__init__.py) fails here, not in a user's
    run; and none of them loads TensorFlow or Keras, save the Monitor."""
    names = sorted(m for m in _modules() if not m.startswith("kerascheck.monitor") and m != "kerascheck.__main__")
    code = f"""
import importlib, sys
failed = []
for name in {names!r}:
    for loaded in [m for m in sys.modules if m == "kerascheck" or m.startswith("kerascheck.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        failed.append(f"{{name}} imports TensorFlow or Keras")
        break
print("\\n".join(failed))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout[-3000:] + proc.stderr[-2000:]


def test_the_pipeline_is_in_the_tree_as_the_architecture_page_says():
    page = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    for folder in ("kerascheck/formats/", "kerascheck/facts/", "kerascheck/tiers/", "rules/", "kerascheck/diagnosis/",
                   "reports/", "kerascheck/runners/", "kerascheck/monitor/"):
        assert os.path.isdir(os.path.join(ROOT, folder)), folder
        assert f"`{folder}`" in page, folder
    # One module per format, each read through the one registry the engine uses.
    from kerascheck.formats import FORMATS

    assert sorted(FORMATS) == ["h5", "keras", "savedmodel"]
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "docs/architecture.md" in readme
