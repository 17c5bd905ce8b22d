"""The graph tier: a forward pass as TensorFlow ops, each op attributed to its layer, judged by
interval analysis (`bounds`), suspects confirmed by edge inputs (`analysis`). `trace` makes that
graph from a Keras model; a format's runnable (a SavedModel's serving function) makes its own.

* `build`: `build(runnable, spec, options)`, the way in;
* `analysis`: the watched ops, the judgement of one op, the confirmation of suspects;
* `bounds`: the interval analysis; `findings`: how the rules word a suspect;
* `trace`: the ops of a Keras model, traced with its layer calls recorded;
* `serving`: the ops of a SavedModel's serving function, imported as saved.

Nothing here is imported by the package itself: the SavedModel runnable imports `analysis`,
which must not pull in the tracing of Keras models.
"""
