"""Facts: what a model file says, read without running anything.

* `spec`: the ModelSpec every format produces (layers, weights, inputs, compile settings);
* `build`: a Keras model config (and its weights' names) into a ModelSpec, shared by every format;
* `topology`, `keras_names`, `stats`, `layerstats`, `libraries`: derived facts the rules read.
"""
