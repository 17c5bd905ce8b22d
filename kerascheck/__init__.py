"""kerascheck: a model-health linter for TensorFlow/Keras.

Importing this package imports neither TensorFlow nor Keras; `kerascheck.Monitor`
(a Keras callback) imports them when it is first used.
"""
from kerascheck.version import __version__

__all__ = ["__version__", "check", "Monitor"]


def check(model_or_path, data=None, **options):
    """Check a keras.Model in memory or model files; see kerascheck.api.check for the options."""
    from kerascheck.api import check as _check

    return _check(model_or_path, data, **options)


def __getattr__(name):
    # The callback subclasses keras.callbacks.Callback, so it is imported only when asked for.
    if name == "Monitor":
        from kerascheck.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'kerascheck' has no attribute {name!r}")
