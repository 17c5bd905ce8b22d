"""Keras 3 `.keras` zip archives (config.json, metadata.json, model.weights.h5), including archives
from Keras releases before 3.4 whose weight groups carry no layer names, and subclassed models
whose config names no layers.

The weights member is read in place rather than extracted, and every member's declared size is
checked against the archive's real size before anything is read.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import struct
import zipfile
from typing import Iterator, Mapping

import numpy as np

from kerascheck.errors import InputError
from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.spec import LayerSpec, ModelSpec, StoredOptimizer, WeightRef
from kerascheck.formats.hdf5 import LinkTree, join_path, limit_of, open_h5, weight_ref
from kerascheck.facts.build import (build_spec, check_model_config, entry_name, is_model_entry, is_subclassed,
                                    model_layers, snake_case)
from kerascheck.formats.limits import (MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO, MAX_JSON_BYTES, MAX_MEMBER_BYTES,
                                       human_size, load_json)


ZIP_MAGIC = b"PK\x03\x04"


EMPTY_ZIP_MAGIC = b"PK\x05\x06"


_KERAS_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}


def read_keras(path: str, stack: contextlib.ExitStack) -> ModelSpec:
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
                f"archive member {name!r} declares {human_size(info.file_size)} uncompressed, above the "
                f"limit of {human_size(MAX_MEMBER_BYTES)} (zip bomb?)"
            )
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > (1 << 20)
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise InputError(
                f"archive member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"({human_size(info.compress_size)} to {human_size(info.file_size)}), above the limit of "
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
    config = load_json(_read_member(zf, members["config.json"], MAX_JSON_BYTES), "config.json")
    check_model_config(config, "config.json")
    keras_version = None
    if "metadata.json" in members:
        meta = load_json(_read_member(zf, members["metadata.json"], MAX_JSON_BYTES), "metadata.json")
        if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
            keras_version = meta["keras_version"]

    weights: dict[str, tuple[WeightRef, ...]] = {}
    walked: list[LayerSpec] | None = None
    optimizers: tuple = ()
    if "model.weights.h5" in members:
        fileobj = _member_fileobj(zf, raw, members["model.weights.h5"], file_size)
        h5 = open_h5(fileobj, "model.weights.h5", stack, limit_bytes=members["model.weights.h5"].file_size)
        if is_subclassed(config):
            walker = _SubclassWalker(h5)
            walked = walker.layers(config)
            optimizers = tuple(walker.optimizers)
        else:
            mapper = _KerasWeightMapper(h5)
            mapper.map_model("", config, (), weights)
            optimizers = tuple(stored_optimizers(mapper.tree, mapper.tree.kids("")))

    compile_cfg = config.get("compile_config")
    spec = build_spec(path, "keras", keras_version, config, weights, compile_cfg, tuple(notes), walked)
    return dataclasses.replace(spec, optimizers=optimizers) if optimizers else spec


# Keras names an optimizer's state group after its class in snake case ("adam", "adam_1", "rm_sprop").
_OPTIMIZER_CLASSES = {"adam": "Adam", "adam_w": "AdamW", "adamw": "AdamW", "rm_sprop": "RMSprop",
                      "rmsprop": "RMSprop", "sgd": "SGD", "nadam": "Nadam", "adamax": "Adamax", "adagrad": "Adagrad",
                      "adadelta": "Adadelta", "ftrl": "Ftrl", "lion": "Lion", "lamb": "Lamb", "muon": "Muon",
                      "adafactor": "Adafactor", "loss_scale_optimizer": "LossScaleOptimizer"}


def _is_optimizer_group(tree: "LinkTree", path: str) -> bool:
    """An optimizer's state: its first variable is the scalar integer step counter (`iterations`)."""
    vars_path = join_path(path, "vars")
    if "0" not in tree.kids(vars_path) or "layers" in tree.kids(path):
        return False
    first = tree.open(join_path(vars_path, "0"))
    return getattr(first, "shape", None) == () and getattr(first, "dtype", None) is not None \
        and first.dtype.kind in "iu"


def stored_optimizers(tree: "LinkTree", names) -> list:
    """The optimizers among the top-level groups `names` of a .keras weights file, with their steps."""
    out = []
    for name in sorted(names, key=_natural_key):
        if name == "vars" or not _is_optimizer_group(tree, name):
            continue
        vars_path = join_path(name, "vars")
        keys = sorted(tree.kids(vars_path), key=_natural_key)
        try:
            iterations = int(tree.open(join_path(vars_path, "0"))[()])
        except Exception:
            continue
        rate = None
        if len(keys) > 1:
            second = tree.open(join_path(vars_path, keys[1]))
            if getattr(second, "shape", None) == () and second.dtype.kind == "f":
                rate = float(second[()])
        recorded = tree.attr(vars_path, "name") or name
        cls = _OPTIMIZER_CLASSES.get(re.sub(r"_\d+$", "", recorded))
        slots = sum(int(np.prod(tree.open(join_path(vars_path, k)).shape or (1,))) for k in keys[1:])
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
        raise InputError(f"archive member {info.filename!r} is {human_size(info.file_size)}, above the limit of {human_size(limit)}")
    try:
        with zf.open(info) as fh:
            # Read one byte past the limit: the declared size may lie.
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"archive member {info.filename!r} cannot be read (corrupt or truncated: {exc})") from None
    if len(data) > limit:
        raise InputError(f"archive member {info.filename!r} expands beyond {human_size(limit)} (zip bomb?)")
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
        if len(header) < 30 or header[:4] != ZIP_MAGIC:
            raise InputError(f"archive member {info.filename!r} has a corrupt local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + info.compress_size > file_size:
            raise InputError(f"archive member {info.filename!r} runs past the end of the file (truncated?)")
        return _Window(raw, start, info.compress_size)
    # Compressed members are decompressed as they are read; zipfile stops at the
    # declared size, which was checked above.
    return zf.open(info)


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
        self.tree = LinkTree(h5)
        self.limit = limit_of(h5)

    def map_model(self, path: str, entry: Mapping, scope: tuple[str, ...], out: dict) -> None:
        layers_path = join_path(path, "layers")
        is_sequential = entry.get("class_name") == "Sequential"
        # Sequential.layers leaves out its InputLayer, so Keras never saved one.
        subs = [s for s in model_layers(entry) if not (is_sequential and s["class_name"] == "InputLayer")]
        used: dict[str, int] = {}
        group_names = [_unique_name(snake_case(s["class_name"]), used) for s in subs]
        kids = self.tree.kids(layers_path)
        by_name = {}
        if set(kids) - set(group_names):
            for kid in kids:
                recorded = self.tree.attr(join_path(layers_path, kid, "vars"), "name")
                if recorded is not None:
                    by_name[recorded] = kid
        for sub, gname in zip(subs, group_names):
            name = entry_name(sub)
            gname = by_name.get(name, gname) if by_name else gname
            gpath = join_path(layers_path, gname)
            if not self.tree.has(gpath):
                continue
            if is_model_entry(sub):
                self.map_model(gpath, sub, scope + (name,), out)
            else:
                out["/".join(scope + (name,))] = tuple(
                    self._collect(gpath, sub["class_name"], sub.get("config") or {}, gname))

    def _collect(self, path: str, cls: str, config: Mapping, display: str) -> Iterator[WeightRef]:
        vars_path = join_path(path, "vars")
        keys = sorted(self.tree.kids(vars_path), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        for key, wname in zip(keys, _weight_names(cls, config, len(keys))):
            yield weight_ref(self.tree.open(join_path(vars_path, key)), wname, f"{display}/{wname}", self.limit)
        children = [k for k in self.tree.kids(path) if k != "vars"]
        plain = cls.split(">")[-1]
        recorded = {}
        if len(children) > 1 and plain not in _KNOWN_CHILD_ORDER:
            for attr in children:
                name = self.tree.attr(join_path(path, attr, "vars"), "name")
                if name is not None:
                    recorded[attr] = name
        for attr in _child_order(plain, children, recorded):
            child_cls, child_cfg = _child_class(cls, config, attr)
            yield from self._collect(join_path(path, attr), child_cls, child_cfg, f"{display}/{attr}")


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
    kerascheck.tiers.modelio names the live model's layers. The config holds no classes, so
    each layer's class is read from the group's name or the layer name Keras recorded
    (`dense_3`), or guessed from the shapes of its weights; a guess that fails is
    the generic "Layer", whose weights keep neutral names.
    """

    def __init__(self, h5):
        self.tree = LinkTree(h5)
        self.limit = limit_of(h5)

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
                recorded = self.tree.attr(join_path(path, kid, "vars"), "name") if by_name else None
                self._visit(join_path(path, kid), (parts[:-1] + (recorded or kid,)) if by_name else parts + (kid,),
                            kid, out)
            return
        inner = join_path(path, "layers")
        if "layers" in kids and all("vars" in self.tree.kids(join_path(inner, k)) for k in self.tree.kids(inner)):
            for kid in sorted(self.tree.kids(inner), key=_natural_key):  # a Functional or Sequential model
                recorded = self.tree.attr(join_path(inner, kid, "vars"), "name")
                self._visit(join_path(inner, kid), parts + (recorded or kid,), kid, out)
            return
        recorded = self.tree.attr(join_path(path, "vars"), "name")
        cls = _guess_class(hint, recorded, self.tree, path)
        refs = list(self._collect(path, cls, "/".join(parts)))
        if refs:
            out.append(self._layer(parts, cls, refs, recorded))

    def _own(self, display: str) -> Iterator[WeightRef]:
        keys = sorted(self.tree.kids("vars"), key=_natural_key)
        refs = [self.tree.open(join_path("vars", k)) for k in keys]
        shapes = [tuple(int(d) for d in r.shape) if r.shape is not None else () for r in refs]
        for ds, role in zip(refs, _roles_by_shape(shapes)):
            yield weight_ref(ds, role, f"{display}/{role}", self.limit)

    def _collect(self, path: str, cls: str, display: str) -> Iterator[WeightRef]:
        vars_path = join_path(path, "vars")
        keys = sorted(self.tree.kids(vars_path), key=_natural_key)
        datasets = [self.tree.open(join_path(vars_path, k)) for k in keys]
        names = _weight_names(cls, {}, len(keys)) if cls != "Layer" else None
        if names is None or (keys and names[0] == "var0"):
            names = _roles_by_shape([tuple(int(d) for d in ds.shape) for ds in datasets])
        for ds, wname in zip(datasets, names):
            yield weight_ref(ds, wname, f"{display}/{wname}", self.limit)
        for attr in sorted((k for k in self.tree.kids(path) if k != "vars"), key=_natural_key):
            child_path = join_path(path, attr)
            if "vars" in self.tree.kids(child_path):
                child_cls = _child_class(cls, {}, attr)[0] or _guess_class(
                    None, self.tree.attr(join_path(child_path, "vars"), "name"), self.tree, child_path)
                yield from self._collect(child_path, child_cls, f"{display}/{attr}")
            else:  # a list or dict of sub-layers inside a layer
                for kid in sorted(self.tree.kids(child_path), key=_natural_key):
                    grand = join_path(child_path, kid)
                    yield from self._collect(grand, _guess_class(kid, None, self.tree, grand),
                                             f"{display}/{attr}/{kid}")

    @staticmethod
    def _layer(parts: tuple[str, ...], cls: str, refs: list, recorded: str | None) -> LayerSpec:
        config = {"name": recorded} if recorded else {}
        return LayerSpec(name=parts[-1], class_name=cls, module="keras.layers" if cls != "Layer" else None,
                         registered_name=None, config=config, inbound=(), scope=parts[:-1], weights=tuple(refs))


def _snake_classes() -> dict[str, str]:

    cached = globals().get("_SNAKE_CLASSES")
    if cached is None:
        cached = {snake_case(c): c for c in sorted(BUILTIN_LAYERS) if c not in ("Layer", "Input", "InputSpec")}
        globals()["_SNAKE_CLASSES"] = cached
    return cached


def _guess_class(group: str | None, recorded: str | None, tree: "LinkTree", path: str) -> str:
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
        cell_vars = tree.kids(join_path(path, "cell", "vars"))
        if len(cell_vars) >= 2:
            kernel = tree.open(join_path(path, "cell", "vars", sorted(cell_vars, key=_natural_key)[1]))
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

