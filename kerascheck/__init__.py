"""kerascheck: a model-health linter for TensorFlow/Keras.

Importing this package imports neither TensorFlow nor Keras.
"""
__version__ = "0.1.0"
