"""TensorFlow SavedModel folders: what `model.export()`, `tf.saved_model.save` and tf.keras 2.x write.

* `folder`: the files, checked (regular files inside the folder, sizes) before anything opens them;
* `reader`: `saved_model.pb`, the checkpoint and `keras_metadata.pb` into a ModelSpec (format "savedmodel");
* `audit`: the `unsafe-code` findings for graphs, and whether the folder is cleared to run;
* `flatten`: a signature's function with the functions it calls inlined, as one GraphDef;
* `serving`: the signature of a cleared folder made runnable, what the graph and probe tiers run
  (kerascheck.tiers.graph.serving, kerascheck.tiers.probe.forward).

Nothing in a folder runs before `audit` has cleared it: the folder is never passed to
`tf.saved_model.load`; the serving function is imported as a graph and run with the
checkpoint's values only once cleared (or under --unsafe).
"""
from kerascheck.errors import InputError
from kerascheck.formats.savedmodel.folder import is_savedmodel
from kerascheck.formats.savedmodel.reader import read_savedmodel


def read_spec(path: str, stack):
    try:
        return read_savedmodel(path, stack)
    except InputError as exc:
        # The user pointed at a folder; say what kind of folder kerascheck took it for.
        raise InputError(f"TensorFlow SavedModel folder: {exc}") from None


__all__ = ["is_savedmodel", "read_spec"]
