"""Legacy HDF5 model files (`model_config` plus `model_weights`), written by Keras 3 or by
Keras 2 / tf-keras, and the HDF5 reading the `.keras` archive's weights file shares.

HDF5 links are never followed, every declared tensor size is checked against the bytes
stored for it, and text attributes are read where a looping C library can be stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Mapping

import numpy as np

from kerascheck.errors import InputError
from kerascheck.facts.build import build_spec, check_model_config, entry_name, is_model_entry, model_layers
from kerascheck.facts.spec import ModelSpec, WeightRef
from kerascheck.formats.limits import (MAX_JSON_BYTES, MAX_TENSOR_BYTES, MAX_TENSOR_EXPANSION, human_size, load_json,
                                       short_error)


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


_NUMERIC_KINDS = "fiub"


def open_h5(fileobj_or_path, what: str, stack: contextlib.ExitStack, limit_bytes: int):
    import h5py

    try:
        h5 = h5py.File(fileobj_or_path, "r")
    except Exception as exc:  # h5py raises OSError, ValueError and friends
        raise InputError(f"{what} is not a readable HDF5 file (truncated or corrupt: {short_error(exc)})") from None
    stack.callback(h5.close)
    h5._kerascheck_limit = limit_bytes  # the real bytes behind it, for shape-bomb checks
    return h5


def limit_of(h5) -> int:
    """The real bytes behind an HDF5 file opened by open_h5: no tensor in it can hold more."""
    return h5._kerascheck_limit


def child(group, name: str):
    """group[name], refusing soft and external links: a link could pull a local file in."""
    import h5py

    try:
        # H5Lexists/H5Lget_info look at the link itself; `name in group` would resolve it.
        key = name.encode("utf-8")
        link = group.id.links.get_info(key) if group.id.links.exists(key) else None
    except Exception as exc:
        raise InputError(f"HDF5 entry {group.name}/{name} cannot be read ({short_error(exc)})") from None
    if link is None:
        return None
    if link.type != h5py.h5l.TYPE_HARD:
        kind = "an external link" if link.type == h5py.h5l.TYPE_EXTERNAL else "a soft link"
        raise InputError(f"HDF5 entry {group.name}/{name} is {kind}, which kerascheck does not follow")
    try:
        return group[name]
    except Exception as exc:
        raise InputError(f"HDF5 entry {group.name}/{name} cannot be read ({short_error(exc)})") from None


def _keys(group) -> list[str]:
    try:
        return list(group.keys())
    except Exception as exc:
        raise InputError(f"HDF5 group {group.name} cannot be listed ({short_error(exc)})") from None


def weight_ref(ds, name: str, display: str, limit_bytes: int) -> WeightRef:
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
        raise InputError(f"weight {ds.name} cannot be read ({short_error(exc)})") from None
    if dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"weight {ds.name} has non-numeric type {dtype}")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if shape else dtype.itemsize
    allowed = storage * (MAX_TENSOR_EXPANSION if compressed else 1)
    if nbytes > MAX_TENSOR_BYTES or nbytes > allowed or storage > limit_bytes:
        raise InputError(
            f"weight {ds.name} declares shape {shape} ({human_size(nbytes)}) but the file stores "
            f"{human_size(storage)} for it (shape bomb or truncated file)"
        )

    def read(ds=ds, shape=shape) -> np.ndarray:
        try:
            return np.asarray(ds[()]).reshape(shape)
        except Exception as exc:
            raise InputError(f"weight {ds.name} cannot be read (truncated or corrupt: {short_error(exc)})") from None

    def rows(start: int, stop: int, ds=ds) -> np.ndarray:
        try:
            return np.asarray(ds[start:stop])
        except Exception as exc:
            raise InputError(f"weight {ds.name} cannot be read (truncated or corrupt: {short_error(exc)})") from None

    return WeightRef(name=name, path=display, shape=shape, dtype=str(dtype), reader=read,
                     rows=rows if shape else None)


def read_h5(path: str, stack: contextlib.ExitStack) -> ModelSpec:
    h5 = open_h5(path, "file", stack, limit_bytes=os.path.getsize(path))
    attrs = h5.attrs
    if "model_config" not in attrs:
        if "layer_names" in attrs or child(h5, "layers") is not None or child(h5, "vars") is not None:
            raise InputError(
                "holds weights only (saved with save_weights()); kerascheck needs the whole model: "
                "save it with model.save('model.keras')"
            )
        raise InputError("is an HDF5 file without a model_config attribute, not a Keras model saved with model.save()")
    config = load_json(read_attr_bytes(h5, "model_config"), "model_config")
    check_model_config(config, "model_config")
    keras_version = attr_str(h5, "keras_version")
    compile_cfg, training = None, None
    if "training_config" in attrs:
        training = load_json(read_attr_bytes(h5, "training_config"), "training_config")
        if isinstance(training, dict):
            compile_cfg = {"optimizer": training.get("optimizer_config"), "loss": training.get("loss")}
    weights: dict[str, tuple[WeightRef, ...]] = {}
    LinkTree(h5)  # refuses soft and external links anywhere before anything is read
    mw = child(h5, "model_weights")
    group = mw if mw is not None else h5  # save_weights-style layouts keep layers at the root
    _map_h5_weights(group, config, weights, limit_of(h5))
    spec = build_spec(path, "h5", keras_version, config, weights, compile_cfg, ())
    return dataclasses.replace(spec, training_config=training) if training is not None else spec


def read_attr_bytes(h5, name: str) -> bytes:
    def read() -> bytes:
        try:
            attr_id = h5.attrs.get_id(name)
            if attr_id.get_storage_size() > MAX_JSON_BYTES:
                raise InputError(f"attribute {name} is larger than {human_size(MAX_JSON_BYTES)}")
            value = h5.attrs[name]
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"attribute {name} cannot be read ({short_error(exc)})") from None
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


def attr_str(obj, name: str) -> str | None:
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
        raise InputError(f"attribute {group.name}@{name} cannot be read ({short_error(exc)})") from None
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
    for entry in model_layers(config):
        name = entry_name(entry)
        lgroup = child(group, name)
        if lgroup is None:
            continue
        refs_by_owner: dict[str, list[WeightRef]] = {}
        inner_names = _nested_names(entry) if is_model_entry(entry) else {}
        for wname in _attr_names(lgroup, "weight_names"):
            node = lgroup
            for part in wname.split("/"):
                if part == "" or part == "..":
                    raise InputError(f"weight name {wname!r} in group {lgroup.name} is malformed")
                node = child(node, part) if node is not None else None
            if node is None:
                raise InputError(f"weight {wname!r} listed for layer {name!r} is missing from the file (truncated?)")
            short = wname.split("/")[-1].split(":")[0]
            owner = inner_names.get(wname.split("/")[0], name)
            refs_by_owner.setdefault(owner, []).append(weight_ref(node, short, wname, limit))
        for owner, refs in refs_by_owner.items():
            out[owner] = tuple(refs)


def _nested_names(entry: Mapping, scope: tuple[str, ...] = ()) -> dict[str, str]:
    """Plain layer name -> qualname for every layer inside a nested model entry."""
    names: dict[str, str] = {}
    inner_scope = scope + (entry_name(entry),)
    for sub in model_layers(entry):
        names.setdefault(entry_name(sub), "/".join(inner_scope + (entry_name(sub),)))
        if is_model_entry(sub):
            for key, qual in _nested_names(sub, inner_scope).items():
                names.setdefault(key, qual)
    return names


class LinkTree:
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
            raise InputError(f"HDF5 file cannot be listed (corrupt or truncated: {short_error(exc)})") from None
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
            raise InputError(f"HDF5 entry {path} cannot be read ({short_error(exc)})") from None

    def attr(self, path: str, name: str) -> str | None:
        return attr_str(self.open(path), name) if self.has(path) else None


def join_path(*parts: str) -> str:
    return "/".join(p for p in parts if p)

