"""The `spec` tier: read a saved Keras model without running anything in it.

This module imports neither TensorFlow nor Keras and never unmarshals, unpickles
or imports anything named in the file. It reads:

* Keras 3 `.keras` zip archives (config.json, metadata.json, model.weights.h5),
  including archives from Keras releases before 3.4 whose weight groups carry no
  layer names;
* legacy HDF5 files (`model_config` attribute plus `model_weights`), written by
  Keras 3 or by Keras 2 / tf-keras.

Every size the file declares is checked against a limit and against the file's
real size before anything is allocated, HDF5 links are never followed, and the
weights archive member is read in place rather than extracted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import struct
import time
import zipfile
from typing import Any, Iterator, Mapping

import numpy as np

from kerascheck.errors import InputError
from kerascheck.spec import (
    CompileSpec,
    InputSpec,
    LayerSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    WeightRef,
)

# Limits. Keras's own zip-bomb guard starts at 4 GiB, far too late for a linter
# that may be pointed at anything; these are generous for real models.
MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 200
MAX_ARCHIVE_MEMBERS = 10_000
MAX_MEMBER_BYTES = 16 << 30  # declared uncompressed size of one member
MAX_COMPRESSION_RATIO = 200  # for members above 1 MiB
MAX_TENSOR_BYTES = 8 << 30
# HDF5 compression can legitimately shrink a tensor (an all-zero kernel shrinks a
# lot); beyond this ratio a declared shape is treated as a bomb.
MAX_TENSOR_EXPANSION = 1000

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_KERAS_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
_NUMERIC_KINDS = "fiub"


# --------------------------------------------------------------------------- entry


# What h5py, zipfile and json raise on corrupt structures they do not check themselves.
_CORRUPT = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError, EOFError,
            OverflowError, UnicodeError, struct.error, zipfile.BadZipFile, RecursionError)


@contextlib.contextmanager
def open_spec(path: str) -> Iterator[ModelSpec]:
    """Yield the ModelSpec of the model at `path`; weights stay readable inside the block.

    Raises InputError with a one-line message for anything that cannot be read.
    """
    with contextlib.ExitStack() as stack:
        try:
            spec = _read(path, stack)
        except InputError:
            raise
        except _CORRUPT as exc:
            # The libraries below meet corruption deep inside their own code; the
            # file is what is wrong, and the user gets one line, not a traceback.
            if os.environ.get("KERASCHECK_DEBUG"):
                raise
            raise InputError(f"is corrupt ({type(exc).__name__}: {_short(exc)})") from None
        yield spec


def sniff_format(path: str) -> str:
    """Return "keras", "h5" or "savedmodel" (a folder) from the file's first bytes, or raise InputError."""
    if os.path.isdir(path):
        if os.path.lexists(os.path.join(path, "saved_model.pb")):
            return "savedmodel"  # read by kerascheck.savedmodel (issue 14)
        raise InputError("is a folder without Keras models")
    if not os.path.exists(path):
        raise InputError("no such file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise InputError("is empty (0 bytes)")
    if head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC):
        return "keras"
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    if path.endswith(".pb"):
        raise InputError(
            "is a TensorFlow graph file, which kerascheck does not read: save the Keras model "
            "with model.save('model.keras')"
        )
    raise InputError(
        "is neither a Keras archive nor an HDF5 file (expected a .keras, .h5 or .hdf5 model "
        "saved with model.save())"
    )


def _read(path: str, stack: contextlib.ExitStack) -> ModelSpec:
    fmt = sniff_format(path)
    if fmt == "savedmodel":  # TensorFlow SavedModel folders (issue 14)
        from kerascheck.savedmodel import read_spec

        return read_spec(path, stack)
    if fmt == "keras":
        return _read_keras(path, stack)
    return _read_h5(path, stack)


# ----------------------------------------------------------------------- .keras


def _read_keras(path: str, stack: contextlib.ExitStack) -> ModelSpec:
    file_size = os.path.getsize(path)
    raw = stack.enter_context(open(path, "rb"))
    try:
        zf = stack.enter_context(zipfile.ZipFile(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error) as exc:
        raise InputError(f"is not a readable .keras archive (truncated or corrupt zip: {exc})") from None
    except OSError as exc:
        raise InputError(f"is not a readable .keras archive ({exc})") from None

    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise InputError(f"archive has {len(infos)} members, more than the limit of {MAX_ARCHIVE_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    notes = []
    for info in infos:
        name = info.filename
        if _unsafe_member_name(name):
            raise InputError(f"archive member name {name!r} points outside the archive (path traversal)")
        if name in members:
            raise InputError(f"archive has two members named {name!r}")
        members[name] = info
        if info.file_size > MAX_MEMBER_BYTES:
            raise InputError(
                f"archive member {name!r} declares {_human(info.file_size)} uncompressed, above the "
                f"limit of {_human(MAX_MEMBER_BYTES)} (zip bomb?)"
            )
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > (1 << 20)
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise InputError(
                f"archive member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"({_human(info.compress_size)} to {_human(info.file_size)}), above the limit of "
                f"{MAX_COMPRESSION_RATIO}x (zip bomb?)"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise InputError(f"archive member {name!r} is stored uncompressed but declares two different sizes (corrupt)")
        if info.compress_size > file_size:
            raise InputError(f"archive member {name!r} claims more bytes than the file has (truncated?)")
        if name not in _KERAS_MEMBERS and not name.startswith("assets/"):
            notes.append(f"unexpected archive member {name!r}")

    if "config.json" not in members:
        raise InputError("is a zip archive without config.json, not a Keras model saved with model.save()")
    config = _load_json(_read_member(zf, members["config.json"], MAX_JSON_BYTES), "config.json")
    _check_model_config(config, "config.json")
    keras_version = None
    if "metadata.json" in members:
        meta = _load_json(_read_member(zf, members["metadata.json"], MAX_JSON_BYTES), "metadata.json")
        if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
            keras_version = meta["keras_version"]

    weights: dict[str, tuple[WeightRef, ...]] = {}
    walked: list[LayerSpec] | None = None
    optimizers: tuple = ()
    if "model.weights.h5" in members:
        fileobj = _member_fileobj(zf, raw, members["model.weights.h5"], file_size)
        h5 = _open_h5(fileobj, "model.weights.h5", stack, limit_bytes=members["model.weights.h5"].file_size)
        if is_subclassed(config):
            walker = _SubclassWalker(h5)
            walked = walker.layers(config)
            optimizers = tuple(walker.optimizers)
        else:
            mapper = _KerasWeightMapper(h5)
            mapper.map_model("", config, (), weights)
            optimizers = tuple(stored_optimizers(mapper.tree, mapper.tree.kids("")))

    compile_cfg = config.get("compile_config")
    spec = _build_spec(path, "keras", keras_version, config, weights, compile_cfg, tuple(notes), walked)
    return dataclasses.replace(spec, optimizers=optimizers) if optimizers else spec


# Keras names an optimizer's state group after its class in snake case ("adam", "adam_1", "rm_sprop").
_OPTIMIZER_CLASSES = {"adam": "Adam", "adam_w": "AdamW", "adamw": "AdamW", "rm_sprop": "RMSprop",
                      "rmsprop": "RMSprop", "sgd": "SGD", "nadam": "Nadam", "adamax": "Adamax", "adagrad": "Adagrad",
                      "adadelta": "Adadelta", "ftrl": "Ftrl", "lion": "Lion", "lamb": "Lamb", "muon": "Muon",
                      "adafactor": "Adafactor", "loss_scale_optimizer": "LossScaleOptimizer"}


def _is_optimizer_group(tree: "_LinkTree", path: str) -> bool:
    """An optimizer's state: its first variable is the scalar integer step counter (`iterations`)."""
    vars_path = _join(path, "vars")
    if "0" not in tree.kids(vars_path) or "layers" in tree.kids(path):
        return False
    first = tree.open(_join(vars_path, "0"))
    return getattr(first, "shape", None) == () and getattr(first, "dtype", None) is not None \
        and first.dtype.kind in "iu"


def stored_optimizers(tree: "_LinkTree", names) -> list:
    """The optimizers among the top-level groups `names` of a .keras weights file, with their steps."""
    from kerascheck.spec import StoredOptimizer

    out = []
    for name in sorted(names, key=_natural_key):
        if name == "vars" or not _is_optimizer_group(tree, name):
            continue
        vars_path = _join(name, "vars")
        keys = sorted(tree.kids(vars_path), key=_natural_key)
        try:
            iterations = int(tree.open(_join(vars_path, "0"))[()])
        except Exception:
            continue
        rate = None
        if len(keys) > 1:
            second = tree.open(_join(vars_path, keys[1]))
            if getattr(second, "shape", None) == () and second.dtype.kind == "f":
                rate = float(second[()])
        recorded = tree.attr(vars_path, "name") or name
        cls = _OPTIMIZER_CLASSES.get(re.sub(r"_\d+$", "", recorded))
        slots = sum(int(np.prod(tree.open(_join(vars_path, k)).shape or (1,))) for k in keys[1:])
        out.append(StoredOptimizer(attribute=name, class_name=cls, iterations=iterations, learning_rate=rate,
                                   slots=slots))
    return out


def _unsafe_member_name(name: str) -> bool:
    if not name or "\x00" in name:
        return True
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return True
    return any(part == ".." for part in norm.split("/"))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise InputError(f"archive member {info.filename!r} is {_human(info.file_size)}, above the limit of {_human(limit)}")
    try:
        with zf.open(info) as fh:
            # Read one byte past the limit: the declared size may lie.
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"archive member {info.filename!r} cannot be read (corrupt or truncated: {exc})") from None
    if len(data) > limit:
        raise InputError(f"archive member {info.filename!r} expands beyond {_human(limit)} (zip bomb?)")
    return data


class _Window(io.RawIOBase):
    """A read-only view of bytes [start, start+length) of an open file.

    A stored (uncompressed) member is read in place: nothing is extracted to disk
    and the weights never sit in memory all at once.
    """

    def __init__(self, raw, start: int, length: int):
        self._raw, self._start, self._len, self._pos = raw, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._len}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf) -> int:
        n = max(0, min(len(buf), self._len - self._pos))
        if n == 0:
            return 0
        self._raw.seek(self._start + self._pos)
        got = self._raw.readinto(memoryview(buf)[:n])
        self._pos += got or 0
        return got or 0


def _member_fileobj(zf: zipfile.ZipFile, raw, info: zipfile.ZipInfo, file_size: int):
    if info.compress_type == zipfile.ZIP_STORED:
        raw.seek(info.header_offset)
        header = raw.read(30)
        if len(header) < 30 or header[:4] != _ZIP_MAGIC:
            raise InputError(f"archive member {info.filename!r} has a corrupt local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + info.compress_size > file_size:
            raise InputError(f"archive member {info.filename!r} runs past the end of the file (truncated?)")
        return _Window(raw, start, info.compress_size)
    # Compressed members are decompressed as they are read; zipfile stops at the
    # declared size, which was checked above.
    return zf.open(info)


# --------------------------------------------------------------------------- HDF5


def _open_h5(fileobj_or_path, what: str, stack: contextlib.ExitStack, limit_bytes: int):
    import h5py

    try:
        h5 = h5py.File(fileobj_or_path, "r")
    except Exception as exc:  # h5py raises OSError, ValueError and friends
        raise InputError(f"{what} is not a readable HDF5 file (truncated or corrupt: {_short(exc)})") from None
    stack.callback(h5.close)
    h5._kerascheck_limit = limit_bytes  # the real bytes behind it, for shape-bomb checks
    return h5


def _child(group, name: str):
    """group[name], refusing soft and external links: a link could pull a local file in."""
    import h5py

    try:
        # H5Lexists/H5Lget_info look at the link itself; `name in group` would resolve it.
        key = name.encode("utf-8")
        link = group.id.links.get_info(key) if group.id.links.exists(key) else None
    except Exception as exc:
        raise InputError(f"HDF5 entry {group.name}/{name} cannot be read ({_short(exc)})") from None
    if link is None:
        return None
    if link.type != h5py.h5l.TYPE_HARD:
        kind = "an external link" if link.type == h5py.h5l.TYPE_EXTERNAL else "a soft link"
        raise InputError(f"HDF5 entry {group.name}/{name} is {kind}, which kerascheck does not follow")
    try:
        return group[name]
    except Exception as exc:
        raise InputError(f"HDF5 entry {group.name}/{name} cannot be read ({_short(exc)})") from None


def _keys(group) -> list[str]:
    try:
        return list(group.keys())
    except Exception as exc:
        raise InputError(f"HDF5 group {group.name} cannot be listed ({_short(exc)})") from None


def _weight_ref(ds, name: str, display: str, limit_bytes: int) -> WeightRef:
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise InputError(f"HDF5 entry {ds.name} should be a weight tensor but is a group")
    try:
        if ds.is_virtual:
            raise InputError(f"weight {ds.name} is a virtual dataset, which kerascheck does not follow")
        if ds.external:
            raise InputError(f"weight {ds.name} keeps its data in an external file, which kerascheck does not read")
        shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else ()
        dtype = ds.dtype
        storage = ds.id.get_storage_size()
        compressed = bool(ds.compression) or bool(getattr(ds, "_filters", None))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"weight {ds.name} cannot be read ({_short(exc)})") from None
    if dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"weight {ds.name} has non-numeric type {dtype}")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if shape else dtype.itemsize
    allowed = storage * (MAX_TENSOR_EXPANSION if compressed else 1)
    if nbytes > MAX_TENSOR_BYTES or nbytes > allowed or storage > limit_bytes:
        raise InputError(
            f"weight {ds.name} declares shape {shape} ({_human(nbytes)}) but the file stores "
            f"{_human(storage)} for it (shape bomb or truncated file)"
        )

    def read(ds=ds, shape=shape) -> np.ndarray:
        try:
            return np.asarray(ds[()]).reshape(shape)
        except Exception as exc:
            raise InputError(f"weight {ds.name} cannot be read (truncated or corrupt: {_short(exc)})") from None

    def rows(start: int, stop: int, ds=ds) -> np.ndarray:
        try:
            return np.asarray(ds[start:stop])
        except Exception as exc:
            raise InputError(f"weight {ds.name} cannot be read (truncated or corrupt: {_short(exc)})") from None

    return WeightRef(name=name, path=display, shape=shape, dtype=str(dtype), _reader=read,
                     _rows=rows if shape else None)


def _read_h5(path: str, stack: contextlib.ExitStack) -> ModelSpec:
    h5 = _open_h5(path, "file", stack, limit_bytes=os.path.getsize(path))
    attrs = h5.attrs
    if "model_config" not in attrs:
        if "layer_names" in attrs or _child(h5, "layers") is not None or _child(h5, "vars") is not None:
            raise InputError(
                "holds weights only (saved with save_weights()); kerascheck needs the whole model: "
                "save it with model.save('model.keras')"
            )
        raise InputError("is an HDF5 file without a model_config attribute, not a Keras model saved with model.save()")
    config = _load_json(_read_attr_bytes(h5, "model_config"), "model_config")
    _check_model_config(config, "model_config")
    keras_version = _attr_str(h5, "keras_version")
    compile_cfg = None
    if "training_config" in attrs:
        training = _load_json(_read_attr_bytes(h5, "training_config"), "training_config")
        if isinstance(training, dict):
            compile_cfg = {"optimizer": training.get("optimizer_config"), "loss": training.get("loss")}
    weights: dict[str, tuple[WeightRef, ...]] = {}
    _LinkTree(h5)  # refuses soft and external links anywhere before anything is read
    mw = _child(h5, "model_weights")
    group = mw if mw is not None else h5  # save_weights-style layouts keep layers at the root
    _map_h5_weights(group, config, weights, h5._kerascheck_limit)
    return _build_spec(path, "h5", keras_version, config, weights, compile_cfg, ())


def _read_attr_bytes(h5, name: str) -> bytes:
    def read() -> bytes:
        try:
            attr_id = h5.attrs.get_id(name)
            if attr_id.get_storage_size() > MAX_JSON_BYTES:
                raise InputError(f"attribute {name} is larger than {_human(MAX_JSON_BYTES)}")
            value = h5.attrs[name]
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"attribute {name} cannot be read ({_short(exc)})") from None
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if isinstance(value, (bytes, np.bytes_)):
            return bytes(value)
        raise InputError(f"attribute {name} is not text")

    # A corrupt global heap makes HDF5's C library loop forever while it reads a text
    # attribute (found by fuzzing); a child process that can be stopped does the read.
    return bounded(read, ATTR_SECONDS, f"attribute {name} could not be read within {ATTR_SECONDS:g} s (corrupt "
                                       "HDF5: the library loops on it)")


ATTR_SECONDS = 5.0


def bounded(fn, seconds: float, timeout_message: str) -> bytes:
    """fn() -> bytes in a forked child, stopped after `seconds`; in-process where forking is unsafe.

    Forking is safe here only before TensorFlow is imported (its threads hold locks a
    child would inherit): the spec tier of a worker runs before anything imports it.
    """
    import select
    import signal
    import sys

    if os.name != "posix" or "tensorflow" in sys.modules or not hasattr(os, "fork"):
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one read, its result down the pipe, and out without cleanup
        code = 0
        try:
            os.close(r)
            try:
                payload = b"K" + fn()
            except InputError as exc:
                payload = b"E" + str(exc).encode("utf-8", "replace")
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise InputError(timeout_message)
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    data = b"".join(chunks)
    if data[:1] == b"K":
        return data[1:]
    if data[:1] == b"E":
        raise InputError(data[1:].decode("utf-8", "replace"))
    raise InputError(timeout_message.split(" within ")[0] + " (the read failed)")


def _attr_str(obj, name: str) -> str | None:
    try:
        value = obj.attrs.get(name)
    except Exception:
        return None
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _attr_names(group, name: str) -> list[str]:
    try:
        value = group.attrs.get(name)
    except Exception as exc:
        raise InputError(f"attribute {group.name}@{name} cannot be read ({_short(exc)})") from None
    if value is None:
        return []
    values = value.tolist() if isinstance(value, np.ndarray) else [value]
    if not isinstance(values, list):
        values = [values]
    out = []
    for v in values:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if not isinstance(v, str):
            raise InputError(f"attribute {group.name}@{name} holds {type(v).__name__}, not names")
        out.append(v)
    return out


def _map_h5_weights(group, config: Mapping, out: dict, limit: int) -> None:
    """Legacy layout: one group per top-level layer listing its `weight_names` in order.

    Weights of a nested model sit in the nested model's group, named after the inner
    layer that owns them ("inner_dense/kernel:0"); they are handed to that layer.
    """
    for entry in _model_layers(config):
        name = _entry_name(entry)
        lgroup = _child(group, name)
        if lgroup is None:
            continue
        refs_by_owner: dict[str, list[WeightRef]] = {}
        inner_names = _nested_names(entry) if _is_model_entry(entry) else {}
        for wname in _attr_names(lgroup, "weight_names"):
            node = lgroup
            for part in wname.split("/"):
                if part == "" or part == "..":
                    raise InputError(f"weight name {wname!r} in group {lgroup.name} is malformed")
                node = _child(node, part) if node is not None else None
            if node is None:
                raise InputError(f"weight {wname!r} listed for layer {name!r} is missing from the file (truncated?)")
            short = wname.split("/")[-1].split(":")[0]
            owner = inner_names.get(wname.split("/")[0], name)
            refs_by_owner.setdefault(owner, []).append(_weight_ref(node, short, wname, limit))
        for owner, refs in refs_by_owner.items():
            out[owner] = tuple(refs)


def _nested_names(entry: Mapping, scope: tuple[str, ...] = ()) -> dict[str, str]:
    """Plain layer name -> qualname for every layer inside a nested model entry."""
    names: dict[str, str] = {}
    inner_scope = scope + (_entry_name(entry),)
    for sub in _model_layers(entry):
        names.setdefault(_entry_name(sub), "/".join(inner_scope + (_entry_name(sub),)))
        if _is_model_entry(sub):
            for key, qual in _nested_names(sub, inner_scope).items():
                names.setdefault(key, qual)
    return names


class _LinkTree:
    """The names in an HDF5 file, listed once by H5Lvisit, which follows no link.

    A soft or external link anywhere makes the file unreadable for kerascheck: Keras
    never writes one, and following one could copy a local file into the report.
    """

    def __init__(self, h5):
        import h5py

        self.h5 = h5
        self.children: dict[str, list[str]] = {"": []}
        bad: list[str] = []

        def visit(name: bytes, info):
            path = name.decode("utf-8", "replace")
            if info.type != h5py.h5l.TYPE_HARD:
                bad.append(f"{path} is {'an external' if info.type == h5py.h5l.TYPE_EXTERNAL else 'a soft'} link")
                return 1  # stop visiting
            parent, _, child = path.rpartition("/")
            self.children.setdefault(parent, []).append(child)
            self.children.setdefault(path, [])
            return None

        try:
            h5.id.links.visit(visit, info=True)
        except Exception as exc:
            raise InputError(f"HDF5 file cannot be listed (corrupt or truncated: {_short(exc)})") from None
        if bad:
            raise InputError(f"HDF5 entry {bad[0]}, which kerascheck does not follow")

    def has(self, path: str) -> bool:
        return path in self.children

    def kids(self, path: str) -> list[str]:
        return self.children.get(path, [])

    def open(self, path: str):
        try:
            return self.h5[path]
        except Exception as exc:
            raise InputError(f"HDF5 entry {path} cannot be read ({_short(exc)})") from None

    def attr(self, path: str, name: str) -> str | None:
        return _attr_str(self.open(path), name) if self.has(path) else None


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class _KerasWeightMapper:
    """Maps the `.keras` weights tree onto the layers of the config.

    Keras saves each layer under a path built from its *class* name
    (`layers/dense_1/vars/0`), recursing into attributes for sub-layers
    (`layers/bidirectional/forward_layer/cell/vars/0`), and loads weights back by
    replaying that naming over `model.layers`. The mapper replays it the same way,
    so it pairs weights with layers exactly as Keras's own loader does. Since Keras
    3.4 each `vars` group also records its layer's name; that is used only when
    the replay does not account for every group.
    """

    def __init__(self, h5):
        self.tree = _LinkTree(h5)
        self.limit = h5._kerascheck_limit

    def map_model(self, path: str, entry: Mapping, scope: tuple[str, ...], out: dict) -> None:
        layers_path = _join(path, "layers")
        is_sequential = entry.get("class_name") == "Sequential"
        # Sequential.layers leaves out its InputLayer, so Keras never saved one.
        subs = [s for s in _model_layers(entry) if not (is_sequential and s["class_name"] == "InputLayer")]
        used: dict[str, int] = {}
        group_names = [_unique_name(_snake_case(s["class_name"]), used) for s in subs]
        kids = self.tree.kids(layers_path)
        by_name = {}
        if set(kids) - set(group_names):
            for kid in kids:
                recorded = self.tree.attr(_join(layers_path, kid, "vars"), "name")
                if recorded is not None:
                    by_name[recorded] = kid
        for sub, gname in zip(subs, group_names):
            name = _entry_name(sub)
            gname = by_name.get(name, gname) if by_name else gname
            gpath = _join(layers_path, gname)
            if not self.tree.has(gpath):
                continue
            if _is_model_entry(sub):
                self.map_model(gpath, sub, scope + (name,), out)
            else:
                out["/".join(scope + (name,))] = tuple(
                    self._collect(gpath, sub["class_name"], sub.get("config") or {}, gname))

    def _collect(self, path: str, cls: str, config: Mapping, display: str) -> Iterator[WeightRef]:
        vars_path = _join(path, "vars")
        keys = sorted(self.tree.kids(vars_path), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        for key, wname in zip(keys, _weight_names(cls, config, len(keys))):
            yield _weight_ref(self.tree.open(_join(vars_path, key)), wname, f"{display}/{wname}", self.limit)
        children = [k for k in self.tree.kids(path) if k != "vars"]
        plain = cls.split(">")[-1]
        recorded = {}
        if len(children) > 1 and plain not in _KNOWN_CHILD_ORDER:
            for attr in children:
                name = self.tree.attr(_join(path, attr, "vars"), "name")
                if name is not None:
                    recorded[attr] = name
        for attr in _child_order(plain, children, recorded):
            child_cls, child_cfg = _child_class(cls, config, attr)
            yield from self._collect(_join(path, attr), child_cls, child_cfg, f"{display}/{attr}")


def is_subclassed(config: Mapping) -> bool:
    """A keras.Model subclass: its config is whatever get_config() returns, with no layer list."""
    inner = config.get("config")
    return isinstance(inner, dict) and not isinstance(inner.get("layers"), list) \
        and config.get("class_name") not in ("Functional", "Sequential")


# The groups Keras writes at the top of a model's weights file that are not layers.
_NOT_LAYERS = {"vars", "optimizer"}


class _SubclassWalker:
    """The layers of a keras.Model subclass, read from the weights file alone.

    Keras saves such a model by walking its attributes in sorted order: a layer held
    in `self.classifier` is the group `classifier`, the items of a list or dict of
    layers are `blocks/dense`, `blocks/dense_1` (class name and a counter), and a
    Functional or Sequential model held as an attribute keeps its layers under
    `encoder/layers/<group>`. Each layer is named here by that attribute path, with a
    nested Functional model's layers named by their own names (`encoder/conv2d`), as
    kerascheck.modelio names the live model's layers. The config holds no classes, so
    each layer's class is read from the group's name or the layer name Keras recorded
    (`dense_3`), or guessed from the shapes of its weights; a guess that fails is
    the generic "Layer", whose weights keep neutral names.
    """

    def __init__(self, h5):
        self.tree = _LinkTree(h5)
        self.limit = h5._kerascheck_limit

    def layers(self, config: Mapping) -> list[LayerSpec]:
        out: list[LayerSpec] = []
        name = str(config["config"].get("name") or "model")
        own = list(self._own(name))
        if own:  # add_weight() on the model itself
            out.append(self._layer((name,), "Layer", own, name))
        # Optimizers a subclass holds as attributes (a GAN's d_optimizer and g_optimizer) are
        # state, not layers: their slots are never parameters.
        self.optimizers = stored_optimizers(self.tree, self.tree.kids(""))
        state = {o.attribute for o in self.optimizers}
        for kid in sorted(self.tree.kids(""), key=_natural_key):
            if kid not in _NOT_LAYERS and kid not in state:
                self._visit(kid, (kid,), None, out)
        return out

    def _visit(self, path: str, parts: tuple[str, ...], hint: str | None, out: list) -> None:
        kids = self.tree.kids(path)
        if "vars" not in kids:  # a list or dict of layers: items named after their class
            by_name = parts[-1:] == ("layers",)  # a model's own `layers` list: items by layer name
            for kid in sorted(kids, key=_natural_key):
                recorded = self.tree.attr(_join(path, kid, "vars"), "name") if by_name else None
                self._visit(_join(path, kid), (parts[:-1] + (recorded or kid,)) if by_name else parts + (kid,),
                            kid, out)
            return
        inner = _join(path, "layers")
        if "layers" in kids and all("vars" in self.tree.kids(_join(inner, k)) for k in self.tree.kids(inner)):
            for kid in sorted(self.tree.kids(inner), key=_natural_key):  # a Functional or Sequential model
                recorded = self.tree.attr(_join(inner, kid, "vars"), "name")
                self._visit(_join(inner, kid), parts + (recorded or kid,), kid, out)
            return
        recorded = self.tree.attr(_join(path, "vars"), "name")
        cls = _guess_class(hint, recorded, self.tree, path)
        refs = list(self._collect(path, cls, "/".join(parts)))
        if refs:
            out.append(self._layer(parts, cls, refs, recorded))

    def _own(self, display: str) -> Iterator[WeightRef]:
        keys = sorted(self.tree.kids("vars"), key=_natural_key)
        refs = [self.tree.open(_join("vars", k)) for k in keys]
        shapes = [tuple(int(d) for d in r.shape) if r.shape is not None else () for r in refs]
        for ds, role in zip(refs, _roles_by_shape(shapes)):
            yield _weight_ref(ds, role, f"{display}/{role}", self.limit)

    def _collect(self, path: str, cls: str, display: str) -> Iterator[WeightRef]:
        vars_path = _join(path, "vars")
        keys = sorted(self.tree.kids(vars_path), key=_natural_key)
        datasets = [self.tree.open(_join(vars_path, k)) for k in keys]
        names = _weight_names(cls, {}, len(keys)) if cls != "Layer" else None
        if names is None or (keys and names[0] == "var0"):
            names = _roles_by_shape([tuple(int(d) for d in ds.shape) for ds in datasets])
        for ds, wname in zip(datasets, names):
            yield _weight_ref(ds, wname, f"{display}/{wname}", self.limit)
        for attr in sorted((k for k in self.tree.kids(path) if k != "vars"), key=_natural_key):
            child_path = _join(path, attr)
            if "vars" in self.tree.kids(child_path):
                child_cls = _child_class(cls, {}, attr)[0] or _guess_class(
                    None, self.tree.attr(_join(child_path, "vars"), "name"), self.tree, child_path)
                yield from self._collect(child_path, child_cls, f"{display}/{attr}")
            else:  # a list or dict of sub-layers inside a layer
                for kid in sorted(self.tree.kids(child_path), key=_natural_key):
                    grand = _join(child_path, kid)
                    yield from self._collect(grand, _guess_class(kid, None, self.tree, grand),
                                             f"{display}/{attr}/{kid}")

    @staticmethod
    def _layer(parts: tuple[str, ...], cls: str, refs: list, recorded: str | None) -> LayerSpec:
        config = {"name": recorded} if recorded else {}
        return LayerSpec(name=parts[-1], class_name=cls, module="keras.layers" if cls != "Layer" else None,
                         registered_name=None, config=config, inbound=(), scope=parts[:-1], weights=tuple(refs))


def _snake_classes() -> dict[str, str]:
    from kerascheck.keras_names import BUILTIN_LAYERS

    cached = globals().get("_SNAKE_CLASSES")
    if cached is None:
        cached = {_snake_case(c): c for c in sorted(BUILTIN_LAYERS) if c not in ("Layer", "Input", "InputSpec")}
        globals()["_SNAKE_CLASSES"] = cached
    return cached


def _guess_class(group: str | None, recorded: str | None, tree: "_LinkTree", path: str) -> str:
    """A layer's class from its group name (`dense_1`), its recorded name, or its sub-groups; else "Layer"."""
    for name in (group, recorded):
        if isinstance(name, str):
            cls = _snake_classes().get(re.sub(r"_\d+$", "", name))
            if cls is not None:
                return cls
    kids = tree.kids(path)
    if "forward_layer" in kids and "backward_layer" in kids:
        return "Bidirectional"
    if "cell" in kids:
        cell_vars = tree.kids(_join(path, "cell", "vars"))
        if len(cell_vars) >= 2:
            kernel = tree.open(_join(path, "cell", "vars", sorted(cell_vars, key=_natural_key)[1]))
            ratio = kernel.shape[-1] // max(kernel.shape[0], 1) if len(kernel.shape) == 2 else 0
            return {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}.get(ratio, "RNN")
    return "Layer"


def _roles_by_shape(shapes: list[tuple]) -> list[str]:
    """Weight roles when the class is unknown, from the patterns Keras's own layers leave."""
    n = len(shapes)
    if n == 2 and len(shapes[0]) >= 2 and len(shapes[1]) == 1 and shapes[1][0] == shapes[0][-1]:
        return ["kernel", "bias"]
    if n == 1 and len(shapes[0]) >= 2:
        return ["kernel"]
    if n == 3 and len(shapes[0]) == len(shapes[1]) == 2 and len(shapes[2]) == 1 \
            and shapes[0][1] == shapes[1][1] == shapes[2][0] and shapes[1][1] % shapes[1][0] == 0:
        return ["kernel", "recurrent_kernel", "bias"]
    if n in (2, 4) and all(len(s) == 1 for s in shapes) and len(set(shapes)) == 1:
        return ["gamma", "beta", "moving_mean", "moving_variance"][:n]
    return [f"var{i}" for i in range(n)]


def _built_inputs(config: Mapping) -> tuple[InputSpec, ...]:
    """The inputs a subclassed model was built with (build_config), batch dimension left open."""
    build = config.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None

    def one(name: str, s) -> InputSpec | None:
        if not isinstance(s, list) or not s or not all(d is None or isinstance(d, int) for d in s):
            return None
        return InputSpec(name, (None,) + _shape(s)[1:], "float32")

    if isinstance(shape, dict):
        found = [one(str(k), v) for k, v in shape.items()]
    elif isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        found = [one(f"input_{i}", s) for i, s in enumerate(shape)]
    else:
        found = [one("input", shape)]
    return tuple(f for f in found if f is not None) if all(f is not None for f in found) else ()


# ------------------------------------------------------------- config helpers


def _check_model_config(config: Any, what: str) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(
        config.get("config"), dict
    ):
        raise InputError(f"{what} is not a Keras model config (no class_name/config at the top)")
    _validate_layers(config, what, depth=0)


def _validate_layers(entry: Mapping, what: str, depth: int) -> None:
    layers = entry["config"].get("layers")
    if layers is None:
        return
    if not isinstance(layers, list):
        raise InputError(f"{what}: 'layers' of {entry.get('class_name')} is not a list")
    for i, sub in enumerate(layers):
        if (
            not isinstance(sub, dict)
            or not isinstance(sub.get("class_name"), str)
            or not isinstance(sub.get("config"), dict)
            or not isinstance(_entry_name(sub, strict=False), str)
        ):
            raise InputError(f"{what}: layer #{i} of {entry.get('class_name')} has no class_name, config or name")
        if _is_model_entry(sub):
            _validate_layers(sub, what, depth + 1)


def _entry_name(entry: Mapping, strict: bool = True):
    name = entry.get("name")
    if not isinstance(name, str):
        name = (entry.get("config") or {}).get("name")
    if strict and not isinstance(name, str):
        raise InputError("a layer in the config has no name")
    return name


def _is_model_entry(entry: Mapping) -> bool:
    return isinstance((entry.get("config") or {}).get("layers"), list)


def _model_layers(entry: Mapping) -> list:
    return (entry.get("config") or {}).get("layers") or []


def _snake_case(name: str) -> str:
    # Keras's keras.src.utils.naming.to_snake_case, which names the weight groups.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique_name(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _natural_key(name: str):
    # Keras walks attributes in sorted order with private ones last, and names
    # container items with counters ("cell", "cell_1", ..., "cell_10").
    return (name.startswith("_"), [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)])


# Keras layers whose sub-layers get_weights() lists in creation order, which the
# file's sorted attribute names do not preserve.
_KNOWN_CHILD_ORDER = {
    "Bidirectional": ("forward_layer", "backward_layer"),
    "MultiHeadAttention": ("query_dense", "key_dense", "value_dense", "output_dense"),
    "GroupedQueryAttention": ("query_dense", "key_dense", "value_dense", "output_dense"),
}


def _child_order(cls: str, attrs: list[str], recorded: dict[str, str]) -> list[str]:
    """Sub-layer attributes in the order get_weights() lists them, as far as the file tells.

    get_weights() follows the order sub-layers were created in. The file keeps them
    under sorted attribute names, but Keras 3.4+ also records each one's layer name,
    and auto-generated names ("dense", "dense_1", ...) count up in creation order.
    """
    attrs = sorted(attrs, key=_natural_key)
    if cls in _KNOWN_CHILD_ORDER:
        order = {a: i for i, a in enumerate(_KNOWN_CHILD_ORDER[cls])}
        return sorted(attrs, key=lambda a: order.get(a, len(order)))
    if attrs and all(a in recorded for a in attrs):
        return sorted(attrs, key=lambda a: _natural_key(recorded[a]))
    return attrs


_IMPLICIT_CELLS = {
    "LSTM": "LSTMCell",
    "GRU": "GRUCell",
    "SimpleRNN": "SimpleRNNCell",
    "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell",
    "ConvLSTM3D": "ConvLSTMCell",
}


def _child_class(cls: str, config: Mapping, attr: str) -> tuple[str, Mapping]:
    def entry(value):
        if isinstance(value, dict) and isinstance(value.get("class_name"), str):
            return value["class_name"], value.get("config") or {}
        return "", {}

    if attr == "cell":
        if cls in _IMPLICIT_CELLS:
            return _IMPLICIT_CELLS[cls], config
        return entry(config.get("cell"))
    if attr in ("layer", "forward_layer"):
        return entry(config.get("layer"))
    if attr == "backward_layer":
        return entry(config.get("backward_layer") or config.get("layer"))
    if cls in ("MultiHeadAttention", "GroupedQueryAttention") and attr.endswith("_dense"):
        return "EinsumDense", {"use_bias": config.get("use_bias", True)}
    return "", {}


def _weight_names(cls: str, config: Mapping, n: int) -> list[str]:
    """Names of a layer's own variables, in the order Keras saves them."""
    bias = ["bias"] if config.get("use_bias", True) else []
    scale = ["gamma"] if config.get("scale", True) else []
    center = ["beta"] if config.get("center", True) else []
    names: list[str] | None = None
    if cls in ("Dense", "EinsumDense") or (cls.startswith("Conv") and "LSTM" not in cls):
        names = ["kernel"] + bias
    elif cls.startswith("DepthwiseConv"):
        names = ["depthwise_kernel"] + bias
    elif cls.startswith("SeparableConv"):
        names = ["depthwise_kernel", "pointwise_kernel"] + bias
    elif cls == "BatchNormalization":
        names = scale + center + ["moving_mean", "moving_variance"]
    elif cls in ("LayerNormalization", "GroupNormalization"):
        names = scale + center
    elif cls == "Embedding":
        names = ["embeddings"]
    elif cls in ("LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTMCell"):
        names = ["kernel", "recurrent_kernel"] + bias
    elif cls == "PReLU":
        names = ["alpha"]
    elif cls == "Normalization":
        names = ["mean", "variance", "count"]
    if names is None or len(names) != n:
        return [f"var{i}" for i in range(n)]
    return names


def _load_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{what} is larger than {_human(MAX_JSON_BYTES)}")
    if not data.strip():
        raise InputError(f"{what} is empty")

    def no_duplicates(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise ValueError(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise InputError(f"{what} is not valid JSON ({_short(exc)})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of dicts and lists, without recursion (scalars are not visited)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if d > deepest:
            deepest = d
            if d > MAX_JSON_DEPTH:
                return d
        children = node.values() if isinstance(node, dict) else node
        stack.extend((v, d + 1) for v in children if isinstance(v, (dict, list)))
    return deepest if isinstance(value, (dict, list)) else 0


# ---------------------------------------------------------------- spec assembly


def _build_spec(path, fmt, keras_version, config, weights, compile_cfg, notes, walked=None) -> ModelSpec:
    layers: list[LayerSpec] = list(walked or ())
    if walked is None:
        _flatten(config, (), weights, layers)
    inputs = _inputs(config, layers)
    outputs = tuple(_resolve_outputs(config, ()))
    compile_spec = _compile_spec(compile_cfg, config, outputs)
    return ModelSpec(
        path=path,
        format=fmt,
        keras_version=keras_version,
        class_name=config["class_name"],
        name=str(config["config"].get("name") or ""),
        config=config,
        layers=tuple(layers),
        inputs=inputs,
        outputs=outputs,
        compile=compile_spec,
        notes=notes,
        raw_compile=compile_cfg if isinstance(compile_cfg, dict) else None,
    )


def _flatten(entry: Mapping, scope: tuple[str, ...], weights: dict, out: list) -> None:
    sequential = entry.get("class_name") == "Sequential" or not any(
        "inbound_nodes" in sub for sub in _model_layers(entry)
    )
    prev = None
    for sub in _model_layers(entry):
        name = _entry_name(sub)
        if sequential:
            inbound = (prev,) if prev else ()
            prev = name
        else:
            inbound = tuple(dict.fromkeys(_history_names(sub.get("inbound_nodes"))))
        qual = "/".join(scope + (name,))
        out.append(
            LayerSpec(
                name=name,
                class_name=sub["class_name"],
                module=sub.get("module") if isinstance(sub.get("module"), str) else None,
                registered_name=sub.get("registered_name") if isinstance(sub.get("registered_name"), str) else None,
                config=sub["config"],
                inbound=inbound,
                scope=scope,
                weights=weights.get(qual, ()),
            )
        )
        if _is_model_entry(sub):
            _flatten(sub, scope + (name,), weights, out)


def _history_names(node: Any) -> Iterator[str]:
    """Producer layer names in inbound_nodes, in the Keras 3 and the Keras 2 format."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            history = (node.get("config") or {}).get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                yield history[0]
            return
        for value in node.values():
            yield from _history_names(value)
    elif isinstance(node, list):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
            yield node[0]  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
            return
        for value in node:
            yield from _history_names(value)


def _layer_refs(node: Any) -> Iterator[str]:
    """Layer names in input_layers/output_layers ([name, node, tensor], nested in lists or dicts)."""
    if isinstance(node, list):
        if len(node) == 3 and isinstance(node[0], str) and isinstance(node[1], int):
            yield node[0]
            return
        for value in node:
            yield from _layer_refs(value)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _layer_refs(value)


def _resolve_outputs(entry: Mapping, scope: tuple[str, ...]) -> Iterator[str]:
    subs = {_entry_name(s): s for s in _model_layers(entry)}
    if not subs:
        return
    names = list(_layer_refs(entry["config"].get("output_layers")))
    if not names:
        names = [_entry_name(_model_layers(entry)[-1])]
    for name in names:
        sub = subs.get(name)
        if sub is None:
            continue
        if _is_model_entry(sub):
            yield from _resolve_outputs(sub, scope + (name,))
        else:
            yield "/".join(scope + (name,))


def _inputs(config: Mapping, layers: list[LayerSpec]) -> tuple[InputSpec, ...]:
    if is_subclassed(config):
        return _built_inputs(config)
    found = []
    for layer in layers:
        if layer.scope == () and layer.class_name == "InputLayer":
            shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
            found.append(InputSpec(layer.name, _shape(shape), _dtype_name(layer.config.get("dtype"))))
    if found:
        # In the order the model takes them, which input_layers gives (the layer list may differ).
        order = list(_layer_refs(config["config"].get("input_layers")))
        rank = {name: i for i, name in enumerate(order)}
        return tuple(sorted(found, key=lambda inp: rank.get(inp.name, len(rank))))
    # A Sequential model without an InputLayer entry records its shape elsewhere.
    cfg = config["config"]
    shape = cfg.get("build_input_shape")
    first = next((l for l in layers if l.scope == ()), None)
    if shape is None and first is not None:
        shape = first.config.get("batch_input_shape") or (first.config.get("build_config") or {}).get("input_shape")
    if shape is None:
        return ()
    dtype = _dtype_name(first.config.get("dtype")) if first is not None else "float32"
    return (InputSpec("input", _shape(shape), dtype),)


def _shape(shape: Any) -> tuple[int | None, ...]:
    if not isinstance(shape, list):
        return ()
    return tuple(d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape)


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict):
        inner = dtype.get("config") or {}
        if isinstance(inner.get("name"), str):
            return inner["name"]
    return "float32"


# ------------------------------------------------------------------- compile


_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "k_l_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}


def _canonical_loss(name: str) -> str:
    if ">" in name:
        name = name.split(">", 1)[1]
    snake = _snake_case(name) if any(c.isupper() for c in name) else name
    return _LOSS_ALIASES.get(snake, snake)


def _loss_spec(value: Any) -> LossSpec | None:
    if isinstance(value, str):
        return LossSpec(_canonical_loss(value), False, {}, custom=">" in value)
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        cfg = value.get("config")
        module = value.get("module") if isinstance(value.get("module"), str) else ""
        registered = value.get("registered_name") if isinstance(value.get("registered_name"), str) else ""
        if value["class_name"] == "function" and isinstance(cfg, str):
            custom = ">" in cfg or ">" in registered or not module.startswith(("keras", "tf_keras"))
            return LossSpec(_canonical_loss(cfg), False, {}, custom=custom)
        cfg = cfg if isinstance(cfg, dict) else {}
        custom = ">" in value["class_name"] or ">" in registered or bool(module) and not module.startswith(
            ("keras", "tf_keras"))
        return LossSpec(_canonical_loss(value["class_name"]), bool(cfg.get("from_logits", False)), cfg,
                        custom=custom)
    return None


def _compile_spec(compile_cfg: Any, config: Mapping, outputs: tuple[str, ...]) -> CompileSpec | None:
    if not isinstance(compile_cfg, dict):
        return None
    optimizer = _optimizer_spec(compile_cfg.get("optimizer"))
    loss = compile_cfg.get("loss")
    n = max(len(outputs), 1)
    if isinstance(loss, list):
        losses = tuple(_loss_spec(v) for v in loss[:n]) + (None,) * max(0, n - len(loss))
    elif isinstance(loss, dict) and not isinstance(loss.get("class_name"), str):
        plain = [q.split("/")[0] for q in outputs]  # loss dicts are keyed by top-level output name
        losses = tuple(_loss_spec(loss.get(name)) for name in plain) or (None,)
    else:
        losses = (_loss_spec(loss),) * n
    if optimizer is None and all(l is None for l in losses):
        return None
    return CompileSpec(optimizer=optimizer, losses=losses)


def _optimizer_spec(value: Any) -> OptimizerSpec | None:
    if isinstance(value, str):
        return OptimizerSpec(value, {}, None, None, None, None, None)
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        return None
    cls = value["class_name"].split(">")[-1]
    cfg = value.get("config") if isinstance(value.get("config"), dict) else {}
    lr = cfg.get("learning_rate", cfg.get("lr"))
    schedule = None
    if isinstance(lr, dict):
        schedule = {"class_name": str(lr.get("class_name", "?")), "config": lr.get("config") or {}}
        lr = None
    elif not isinstance(lr, (int, float)) or isinstance(lr, bool):
        lr = None

    def num(key):
        v = cfg.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return OptimizerSpec(
        class_name=cls,
        config=cfg,
        learning_rate=float(lr) if lr is not None else None,
        schedule=schedule,
        clipnorm=num("clipnorm"),
        global_clipnorm=num("global_clipnorm"),
        clipvalue=num("clipvalue"),
    )


# ------------------------------------------------------------------------ misc


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
