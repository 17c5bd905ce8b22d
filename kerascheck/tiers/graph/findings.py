"""What the two graph-tier rules say about a suspect op: where it is, and whether it was confirmed."""
from __future__ import annotations


def where(suspect) -> str:
    """" (op RealDiv 'model/norm/truediv', at layers.py:12: `return x / s`)" """
    at = f"op {suspect.op_type} '{suspect.op}'"
    if suspect.source:
        src = suspect.source
        at += f", at {src['file']}:{src['line']}" + (f": `{src['code']}`" if src.get("code") else "")
    return f" ({at})"


def outcome(suspect, graph) -> tuple[str, str]:
    """(severity, sentence): confirmed by an edge input is an error, otherwise a warning."""
    if suspect.confirmed and all(c == "labels that are all 0" for c in suspect.confirmed):
        # Only a batch whose labels are all 0 (padding only, or one class) turns it non-finite: a real
        # hazard, but not one the data in hand shows, so a warning.
        return "warning", (f" Confirmed only with labels that are all 0: such a batch (nothing but padding, or "
                           f"one class) gives {suspect.nonfinite} there, while everything feeding the op stays "
                           "finite.")
    if suspect.confirmed:
        others = suspect.confirmed[1:]
        also = f" (also {', '.join(others)})" if others else ""
        if suspect.confirmed_at == "layer":
            return "error", (f" Confirmed by running the layer alone: {suspect.confirmed[0]} gives "
                             f"{suspect.nonfinite} in its output{also}, from a finite input.")
        return "error", (f" Confirmed: {suspect.confirmed[0]} gives {suspect.nonfinite} there{also}, "
                         "while everything feeding the op stays finite.")
    tried = ", ".join(graph.edge_inputs) if graph.edge_inputs else "none"
    return "warning", f" Not confirmed by the inputs tried ({tried}), so it is a warning."


def layer_label(suspect) -> str:
    if suspect.layer is None and suspect.layer_class.startswith("loss "):
        return f"The {suspect.layer_class}"
    if suspect.layer is None:
        return f"The model's own call ({suspect.layer_class})"
    return f"Layer '{suspect.layer}' ({suspect.layer_class})"


def evidence(suspect, graph) -> dict:
    return {**suspect.to_evidence(), "edge_inputs": list(graph.edge_inputs), "graph_ops": graph.ops,
            "user_ops": graph.user_ops}


def _library(suspect, text: str) -> tuple[str, str]:
    """(message, fix) for an op inside a library function whose Inf/NaN reached the user's output."""
    call = ""
    if suspect.source:
        src = suspect.source
        call = f", called at {src['file']}:{src['line']}" + (f": `{src['code']}`" if src.get("code") else "")
    whose = "its value" if suspect.layer_class.startswith("loss ") else "its output"
    also = f" (also {', '.join(suspect.confirmed[1:])})" if suspect.confirmed[1:] else ""
    message = (f"{layer_label(suspect)} gets {suspect.nonfinite} from {suspect.library}{call}: inside it, op "
               f"{suspect.op_type} '{suspect.op}' {text}. Confirmed: {suspect.confirmed[0]}{also} gives "
               f"{suspect.nonfinite} in {whose}, while everything feeding the op stays finite.")
    fix = (f"The Inf/NaN comes from inside {suspect.library}, not from your arithmetic: pass it values in the range "
           "it expects (probabilities clipped away from 0 and 1, lengths and labels that fit the inputs), or use "
           "the variant that takes logits.")
    return message, fix


def report(rule, facts, what: dict):
    """The findings of one graph rule: one per suspect op the analysis gave that rule."""
    graph = facts.graph
    for suspect in graph.suspects:
        if suspect.rule != rule.name:
            continue
        text, fix = what[suspect.form]
        if suspect.library is not None and suspect.confirmed:
            message, fix = _library(suspect, text.format(operand=suspect.operand))
            yield rule.finding(layer=suspect.layer, severity="error", message=message, fix=fix,
                               evidence=evidence(suspect, graph))
            continue
        severity, confirmation = outcome(suspect, graph)
        yield rule.finding(
            layer=suspect.layer,
            severity=severity,
            message=f"{layer_label(suspect)} {text.format(operand=suspect.operand)}{where(suspect)}.{confirmation}",
            fix=fix,
            evidence=evidence(suspect, graph),
        )
