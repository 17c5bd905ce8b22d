"""kerascheck: a model-health linter for TensorFlow/Keras.

Importing this package imports neither TensorFlow nor Keras.
"""
__version__ = "0.1.0"


def check(model_or_path, data=None, **options):
    """Check a keras.Model in memory or model files; see kerascheck.api.check for the options."""
    from kerascheck.api import check as _check

    return _check(model_or_path, data, **options)
