"""What every probe finding says about how it was measured."""


def context(probe) -> dict:
    return {"device": probe.device, "data": probe.data_description, "synthetic_data": probe.synthetic,
            "assumed": list(probe.defaults), "cut_by_budget": list(probe.cut),
            "probe_seconds": round(probe.seconds, 2)}


def data_note(probe) -> str:
    return " (measured on synthetic data; pass --data for your own)" if probe.synthetic else ""
