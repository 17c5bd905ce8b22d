"""`--fix-out DIR`: the model with its verified fixes applied, written as a copy beside a list of changes.

Only fixes an intervention verified are written (kerascheck.diagnosis.interventions). The copy is
loaded afresh from the user's file (kerascheck's own model was probed and is not clean),
edited the way the intervention edited it, recompiled where the fix is in the loss or
the optimizer, and saved in the same format as `DIR/<name>.fixed.keras` (or `.h5`),
never over the user's file. Fixes that live in the data (standardised inputs or targets)
and fixes inside custom code are not written; the changes file says what to do instead.
"""
from __future__ import annotations

import os

from kerascheck.diagnosis.interventions import loss_object
from kerascheck.errors import UsageError, error_line
from kerascheck.tiers.model import load_model
from kerascheck.tiers.modelio import layer_paths


def fixed_paths(path: str, out_dir: str) -> tuple[str, str]:
    base = os.path.basename(os.path.normpath(path))
    stem, ext = os.path.splitext(base)
    ext = ext if ext in (".keras", ".h5", ".hdf5") else ".keras"
    return os.path.join(out_dir, f"{stem}.fixed{ext}"), os.path.join(out_dir, f"{stem}.fixed.md")


def write_fixed(spec, changes: list, records: list, options, out_dir: str) -> dict:
    """Write the repaired copy and its changes file; what was written, for the report."""
    model_path, notes_path = fixed_paths(spec.path, out_dir)
    if os.path.realpath(model_path) == os.path.realpath(spec.path):
        raise UsageError(f"--fix-out {out_dir}: the repaired copy would replace {spec.path}; choose another folder")
    os.makedirs(out_dir, exist_ok=True)
    model = load_model(spec, options)  # compile=False: the compile settings are rebuilt below, changed
    written, not_written = [], []
    paths = layer_paths(model)
    # A subclass's config is its __init__'s arguments: an activation changed on one of its layers would
    # not survive the reload, so it is the user's code to change.
    graph = type(model).__name__ in ("Functional", "Sequential")
    for change in changes:
        if change.activations and not graph:
            not_written.append(f"{change.said}: {type(model).__name__} is a subclassed model, whose layers are "
                               "built by its own code: change the activation there")
            continue
        change.apply(model, paths)  # the copy keeps the edits: nothing to undo
        if change.activations or change.reinit or change.gammas or change.losses or change.optimizer or \
                change.learning_rate is not None:
            written.append(change.said)
        if change.not_in_file:
            not_written.append(f"{change.said}: {change.not_in_file}")
    if not written:
        return {"path": None, "changes": None, "written": [], "not_written": not_written}
    problem = _recompile(model, spec, changes)
    if problem:
        not_written.append(problem)
    model.save(model_path)
    with open(notes_path, "w", encoding="utf-8") as fh:
        fh.write(_notes(spec.path, model_path, written, not_written, records))
    return {"path": model_path, "changes": notes_path, "written": written, "not_written": not_written}


def _recompile(model, spec, changes: list) -> str | None:
    """Compile the copy as the file was compiled, with the loss and optimizer parts of `changes`;
    why not, when Keras cannot rebuild the saved compile settings."""
    import copy

    import keras


    saved = spec.raw_compile if isinstance(spec.raw_compile, dict) else None
    wanted = any(c.losses or c.optimizer or c.learning_rate is not None for c in changes)
    if not saved or "loss" not in saved and "optimizer" not in saved:
        return ("the file has no compile settings in Keras 3's form, so the copy is saved uncompiled: "
                "compile it as before" + (", with the loss and optimizer changes above" if wanted else ""))
    cfg = copy.deepcopy(saved)
    for change in changes:
        loss = cfg.get("loss")
        for index, (name, from_logits) in change.losses.items():
            new = keras.losses.serialize(loss_object(name, from_logits))
            if isinstance(loss, list) and index < len(loss):
                loss[index] = new
            elif isinstance(loss, dict) and index < len(loss):
                loss[list(loss)[index]] = new
            else:
                loss = new
        cfg["loss"] = loss
        optimizer = cfg.get("optimizer")
        if isinstance(optimizer, dict) and (change.optimizer or change.learning_rate is not None):
            inner = dict(optimizer.get("config") or {})
            if change.optimizer:
                inner = {k: v for k, v in inner.items() if k not in ("clipnorm", "clipvalue")}
                inner.update(change.optimizer)
            if change.learning_rate is not None:
                inner["learning_rate"] = change.learning_rate
            cfg["optimizer"] = {**optimizer, "config": inner}
        elif change.optimizer or change.learning_rate is not None:
            cls = keras.optimizers.get(optimizer or "adam").__class__
            cfg["optimizer"] = keras.optimizers.serialize(cls(**{**change.optimizer, **(
                {"learning_rate": change.learning_rate} if change.learning_rate is not None else {})}))
    try:
        model.compile_from_config(cfg)
    except Exception as exc:

        return f"Keras could not rebuild the saved compile settings ({error_line(exc)}): the copy is saved uncompiled"
    return None


def _notes(source: str, model_path: str, written: list, not_written: list, records: list) -> str:
    lines = [f"# Changes kerascheck made to {os.path.basename(source)}", "",
             f"Repaired copy: `{os.path.basename(model_path)}` (the original file was not touched). Each change "
             "below was tried on kerascheck's copy of the model first, and removed the problem it is listed "
             "with; the optimizer's state was not kept (the copy trains from a fresh optimizer).", "",
             "## Written into the copy", ""]
    lines += [f"- {w}" for w in written] or ["- nothing"]
    if not_written:
        lines += ["", "## Verified, but yours to apply (not in the model file)", ""]
        lines += [f"- {n}" for n in not_written]
    lines += ["", "## Evidence (before -> after, same seed and steps)", ""]
    for r in records:
        lines.append(f"- {r['change']} ({r['for']}): {r['before'].get('text')} -> {(r.get('after') or {}).get('text')}")
    return "\n".join(lines) + "\n"
