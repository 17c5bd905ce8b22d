"""The graph tier's way in: GraphFacts for whatever runnable a format handed the model tier."""
from __future__ import annotations

from kerascheck.errors import TierUnavailable
from kerascheck.tiers.graph.serving import build_serving_graph
from kerascheck.tiers.graph.trace import build_graph


def build(runnable, spec, options):
    """GraphFacts for what a format handed the model tier; TierUnavailable with the reason when the
    graph cannot be made or analysed."""
    if getattr(runnable, "kind", "keras") == "serving":
        return build_serving_graph(runnable, spec, options)
    try:
        return build_graph(runnable, spec, options)
    except TierUnavailable as exc:
        raise TierUnavailable(f"the graph could not be built: {exc}") from None
