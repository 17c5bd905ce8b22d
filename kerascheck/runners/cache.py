"""--cache DIR: a model's result reused while its bytes, kerascheck and the options are unchanged.

An entry is keyed by the sha256 of the model's bytes and lives in a folder named after
everything else that decides a result: kerascheck's version and a digest of its own code (a
development build with changed rules is another version), the versions of Keras, TensorFlow,
NumPy and h5py, and the options that change results (rules, --static, --data's bytes,
--custom-objects' bytes, --unsafe, --budget, --device, --seed, whether an HTML report wants
layer statistics). A run never reads another folder's entries, so an entry is never trusted
across versions; old folders can simply be deleted.

Entries are pickles of the result, read back by an unpickler that only builds kerascheck's
result classes and plain data (it refuses every other global), so a tampered cache cannot run
code; anything unreadable is a miss and is replaced. Results a runner gave up on (a timeout,
the memory limit, a dead worker) are never stored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import pickle
import sys
import tempfile

from kerascheck.runners.sources import identity, is_url, rename_result, sha256_of
from kerascheck.version import __version__

MAGIC = b"kerascheck-cache 1\n"
LIBRARIES = ("keras", "tensorflow", "numpy", "h5py", "keras-hub")

# Plain containers besides kerascheck's own result classes. No NumPy reconstructor: a crafted
# dtype or array can make NumPy read and write memory it does not own.
ALLOWED_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("builtins", "range"), ("collections", "OrderedDict"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Builds only plain data and kerascheck's result dataclasses, taken from modules already
    imported (a cache file never makes anything import). A dataclass is rebuilt by __new__ and its
    fields set; one with a __post_init__, __setstate__ or __reduce__ of its own is refused, so a
    cache file cannot start a process, open a file or run an import. A result holding anything
    else is not stored (see Cache.store)."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        owner = sys.modules.get(module) if (module == "kerascheck" or module.startswith("kerascheck.")) else None
        cls = getattr(owner, name, None) if owner is not None and name.isidentifier() else None
        if (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module
                and not any(k in vars(c) for c in cls.__mro__[:-1]
                            for k in ("__setstate__", "__reduce__", "__reduce_ex__", "__new__", "__post_init__",
                                      "__getattr__", "__getattribute__"))):
            return cls
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a kerascheck result")


def safe_loads(data: bytes):
    return _SafeUnpickler(io.BytesIO(data)).load()


class Cache:
    def __init__(self, folder: str, rules, static: bool, options):
        self.root = folder
        print_, self.why_not = fingerprint(rules, static, options)
        self.folder = os.path.join(folder, print_) if print_ else None
        self.digests: dict[str, str] = {}  # source -> sha256 of its bytes, when known before the check
        self.identities: dict[str, str] = {}
        self.hits = 0

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def lookup(self, source: str):
        """The cached result for this model as it is now, or None."""
        if not self.enabled:
            return None
        digest = self._digest(source)
        if digest is None:
            return None
        entry = self._entry(digest)
        try:
            with open(entry, "rb") as fh:
                data = fh.read()
            if not data.startswith(MAGIC):
                raise ValueError("not a kerascheck cache entry")
            checked_as, result = safe_loads(data[len(MAGIC):])
        except FileNotFoundError:
            return None
        except Exception:  # truncated, tampered or foreign: a miss, rewritten after the check
            _remove(entry)
            return None
        if not isinstance(checked_as, str) or type(result).__name__ != "ModelResult":
            _remove(entry)
            return None
        self.hits += 1
        result.sha256 = digest
        return rename_result(result, checked_as, source)

    def store(self, source: str, result) -> None:
        if not self.enabled or not result.cacheable:
            return
        digest = result.sha256 or self.digests.get(source)
        if digest is None:
            return
        if is_url(source) and source in self.identities:
            _write(self._index(source, self.identities[source]), digest.encode())
        data = pickle.dumps((source, result), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            safe_loads(data)  # what could not be read back is not written
        except Exception:
            return
        _write(self._entry(digest), MAGIC + data)

    def _digest(self, source: str) -> str | None:
        """The sha256 of the model's bytes as they are now, or None when unknown before its check.

        What the storage says about a model without reading it (size and modification time, or a
        bucket's ETag) stands for its bytes until it changes, as git's index does: which bytes it
        stood for was recorded when they were last read, so a warm run over large local models
        reads no model, and an unchanged remote object is not fetched again."""
        if source in self.digests:
            return self.digests[source]
        ident = identity(source)
        if ident is not None:
            self.identities[source] = ident
            try:
                with open(self._index(source, ident), "rb") as fh:
                    digest = fh.read().decode().strip()
                self.digests[source] = digest
                return digest
            except (OSError, UnicodeError):
                pass
        if is_url(source):
            return None  # known once the worker that checks it has fetched it
        try:
            digest = sha256_of(source)
        except OSError:
            return None  # a missing or unreadable file: its check says why
        self.digests[source] = digest
        if ident is not None:
            _write(self._index(source, ident), digest.encode())
        return digest

    def _entry(self, digest: str) -> str:
        return os.path.join(self.folder, digest[:2], digest + ".pickle")

    def _index(self, url: str, ident: str) -> str:
        key = hashlib.sha256(f"{url}\n{ident}".encode()).hexdigest()
        return os.path.join(self.folder, "seen", key[:2], key)


def fingerprint(rules, static: bool, options) -> tuple[str | None, str | None]:
    """(the folder name for this version and these options, None) or (None, why results cannot be
    cached)."""
    if options is not None and options.fix_out:
        return None, "--fix-out writes a repaired copy of each model, which a cached result would not"
    data = getattr(options, "data", None)
    data_digest = None
    if data:
        if not os.path.isfile(data):
            return None, "--data names a function, whose arrays may differ from run to run"
        data_digest = sha256_of(data)
    custom = []
    for item in getattr(options, "custom_objects", ()) or ():
        custom.append([item, sha256_of(item) if os.path.isfile(item) else _module_digest(item)])
    facts = {
        "kerascheck": __version__,
        "code": code_digest(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "rules": [r.name for r in rules],
        "static": bool(static),
        "data": data_digest,
        "custom_objects": custom,
        **({k: getattr(options, k) for k in ("unsafe", "budget", "device", "seed", "layer_stats")}
           if options is not None else {}),
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    return f"{__version__}-{digest[:16]}", None


_CODE_DIGEST: str | None = None


def code_digest() -> str:
    """A digest of kerascheck's installed code (its modules, rules, report templates)."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        digest = hashlib.sha256()
        for package in ("kerascheck", "kerascheck.rules", "kerascheck.reports"):
            spec = importlib.util.find_spec(package)
            for location in sorted(spec.submodule_search_locations or ()):
                for root, dirs, files in os.walk(location):
                    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                    for name in sorted(files):
                        if name.endswith((".py", ".j2", ".json")):
                            path = os.path.join(root, name)
                            digest.update(os.path.relpath(path, location).encode() + b"\0")
                            with open(path, "rb") as fh:
                                digest.update(fh.read())
        _CODE_DIGEST = digest.hexdigest()
    return _CODE_DIGEST


def _module_digest(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec else None
    return sha256_of(origin) if origin and os.path.isfile(origin) else None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _write(path: str, data: bytes) -> None:
    """Atomically: a reader (another kerascheck run on the same cache) sees the old entry or the new."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written costs a re-check next time, never this run


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
