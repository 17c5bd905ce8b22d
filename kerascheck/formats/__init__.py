"""Formats: every kind of model file, read into the same two things.

Each format gives the engine
* `read(path, stack) -> ModelSpec`: the facts, read without running anything in the file
  (no TensorFlow or Keras import, nothing named in the file imported, unpickled or called);
* `load(spec, options, data) -> runnable`, only when a tier needs one: a Keras model loaded in
  safe mode and prepared for feeding (`kerascheck.tiers.probe.run.ModelInfo`), or a SavedModel's
  serving function once its audit has cleared it (`kerascheck.formats.savedmodel.serving`).
  Loading imports TensorFlow, so it is imported only inside `load` (see kerascheck.backend).

* `keras_archive`: Keras 3 `.keras` zip archives;
* `hdf5`: legacy `.h5` / `.hdf5` model files (and the HDF5 reading the archive's weights share);
* `savedmodel/`: TensorFlow SavedModel folders;
* `limits`: the safety limits and helpers all of them share.

Adding a format: a module with its `read` (and `load` unless it is Keras's own model, loaded by
`kerascheck.tiers.model`), its sniffing in `sniff_format`, and an entry in FORMATS.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Iterator

from kerascheck.errors import InputError, TierUnavailable
from kerascheck.facts.spec import ModelSpec
from kerascheck.formats.hdf5 import HDF5_MAGIC, read_h5
from kerascheck.formats.keras_archive import EMPTY_ZIP_MAGIC, ZIP_MAGIC, read_keras
from kerascheck.formats.limits import CORRUPT, short_error
from kerascheck.formats.savedmodel import read_spec as read_savedmodel


def _load_keras(spec: ModelSpec, options, data):
    """A Keras file's runnable: loaded in safe mode and prepared for the graph and probe tiers (a
    kerascheck.tiers.probe.run.ModelInfo whose `spec` names a subclass's layers by their loaded classes).

    Raises TierUnavailable saying whether the model did not load or loaded and could not be run,
    InputError for a file that cannot be loaded at all, UsageError for flags that do not fit it.
    """
    from kerascheck.tiers.model import load_model, with_live_classes
    from kerascheck.tiers.probe.run import prepare

    loaded = False
    try:
        model = load_model(spec, options)
        loaded = True
        info = prepare(model, spec, options, data)
    except TierUnavailable as exc:
        what = "the model loaded, but kerascheck could not run it" if loaded else "the model was not loaded"
        raise TierUnavailable(f"{what}: {exc}") from None
    info.spec = with_live_classes(spec, info)
    return info


def _load_savedmodel(spec: ModelSpec, options, data):
    from kerascheck.formats.savedmodel.serving import load_serving

    return load_serving(spec, options)


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[[str, contextlib.ExitStack], ModelSpec]
    load: Callable  # (spec, options, data) -> the runnable the model, graph and probe tiers use


FORMATS = {
    "keras": Format("keras", read_keras, _load_keras),
    "h5": Format("h5", read_h5, _load_keras),
    "savedmodel": Format("savedmodel", read_savedmodel, _load_savedmodel),
}


def load(spec: ModelSpec, options, data=None):
    """The runnable for a spec read by open_spec; raises TierUnavailable with the reason it cannot be run."""
    return FORMATS[spec.format].load(spec, options, data)


@contextlib.contextmanager
def open_spec(path: str) -> Iterator[ModelSpec]:
    """Yield the ModelSpec of the model at `path`; weights stay readable inside the block.

    Raises InputError with a one-line message for anything that cannot be read.
    """
    with contextlib.ExitStack() as stack:
        try:
            spec = FORMATS[sniff_format(path)].read(path, stack)
        except InputError:
            raise
        except CORRUPT as exc:
            # The libraries below meet corruption deep inside their own code; the
            # file is what is wrong, and the user gets one line, not a traceback.
            if os.environ.get("KERASCHECK_DEBUG"):
                raise
            raise InputError(f"is corrupt ({type(exc).__name__}: {short_error(exc)})") from None
        yield spec


def sniff_format(path: str) -> str:
    """Return "keras", "h5" or "savedmodel" (a folder) from the file's first bytes, or raise InputError."""
    if os.path.isdir(path):
        if os.path.lexists(os.path.join(path, "saved_model.pb")):
            return "savedmodel"  # read by kerascheck.formats.savedmodel (issue 14)
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
    if head.startswith(ZIP_MAGIC) or head.startswith(EMPTY_ZIP_MAGIC):
        return "keras"
    if head.startswith(HDF5_MAGIC):
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
