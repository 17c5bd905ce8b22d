"""Where TensorFlow and Keras are imported, and the boundary that keeps them out of --static.

`kerascheck --static` reads a folder of models in milliseconds per file without TensorFlow,
and a worker process that reads only specs may be forked (TensorFlow is not fork-safe). So:

* TensorFlow and Keras are imported inside the functions that use them, never at the top of a
  module: importing any module of kerascheck, the rules and the reports loads neither (the
  tests import each one and check). The one exception is kerascheck.monitor, a Keras callback.
  The first import goes through this module (`setup_backend`, `import_tensorflow`), quietly and
  on the device asked for; the `import tensorflow` lines in functions after it find it loaded.
* kerascheck's own modules import each other at the top of the file, with one boundary: what a
  `--static` run never uses is imported where it is used, so that run does not pay for it:
  - the tiers beyond the spec and what drives them: the engine imports kerascheck.tiers.graph.build,
    kerascheck.tiers.probe.run, the --data reader and kerascheck.diagnosis.repair where it
    builds them, kerascheck.diagnosis the interventions where it tests a link, and
    kerascheck.formats what a format's `load` calls (kerascheck.tiers.model and
    kerascheck.tiers.probe.run for Keras files, the SavedModel runnable);
  - the renderers: kerascheck.reports' `render`, the CLI's HTML page (jinja2), Report.to_json
    and Report._repr_html_ (the notebook view);
  - the package root's `kerascheck.check` and `kerascheck.Monitor`, imported when first used,
    and the rules, found by name (kerascheck.engine.all_rules).
  tests/test_architecture.py imports every module on its own and checks that none loads
  TensorFlow or Keras and that no import closes a circle.

The first import of TensorFlow goes through this module, which silences its C++ start-up logs
(they ignore TF_CPP_MIN_LOG_LEVEL and would break the one-line-per-error promise on stderr) and
pins it to the device the user asked for.
"""
from __future__ import annotations

import contextlib
import os
import sys

from kerascheck.errors import UsageError


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C++ logging), keeping Python's sys.stderr usable for errors."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """TensorFlow, imported once, quietly.

    Even its protobuf definitions import all of TensorFlow, so a SavedModel costs the
    import even under --static; nothing from the folder runs for it.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with quiet_stderr():
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]


def tensorflow_on(options):
    """TensorFlow on the device asked for, without importing Keras (a SavedModel's serving function)."""
    tf = import_tensorflow()
    if options.device_used is None:
        gpus = tf.config.list_physical_devices("GPU")
        if options.device == "gpu" and not gpus:
            raise UsageError("--device gpu was given but TensorFlow sees no GPU (use --device auto or cpu)")
        if options.device == "cpu" and gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                pass  # already initialised in this process: the variables still go where asked below
            gpus = []
        options.device_used = "GPU" if gpus else "CPU"
    return tf


def setup_backend(options) -> str:
    """Import TensorFlow and Keras once, pinned to the requested device; returns "GPU" or "CPU"."""
    if options.device_used is not None:
        return options.device_used
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with quiet_stderr():  # TensorFlow's C++ start-up logs ignore TF_CPP_MIN_LOG_LEVEL
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")

    if options.device == "gpu" and not gpus:
        raise UsageError("--device gpu was given but TensorFlow sees no GPU (use --device auto or cpu)")
    if options.device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    import keras

    if not options.verbose:
        _silence_libraries(tf)
    if keras.backend.backend() != "tensorflow":
        raise UsageError(f"the probe tier needs the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()!r}")
    options.device_used = "GPU" if gpus else "CPU"
    return options.device_used


def _silence_libraries(tf) -> None:
    """TensorFlow's, absl's and Keras's own chatter (retracing warnings, deprecations) stays off stderr.

    kerascheck reports what matters about the model itself; --verbose lets it all through.
    """
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    for name in ("tensorflow", "keras", "absl", "h5py", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
