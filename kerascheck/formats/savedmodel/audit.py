"""`unsafe-code` for SavedModel folders: what loading or serving the folder would do besides computing.

A SavedModel carries no Python, but its graph can: `ReadFile`/`WriteFile` and the
dataset and summary ops touch files, `PyFunc` runs whatever Python function the
serving process has registered, RPC and tf.data-service ops reach the network, and
an op the installed TensorFlow does not know needs a custom library loaded first.
Every function in the library is audited, not only the signatures: any of them can
be called once the folder is loaded. The checkpoint ops TensorFlow writes into its
own save/restore functions are allowed there, and only there.

The files are audited too (what TensorFlow never writes, assets that escape
`assets/`), and a tf.keras `keras_metadata.pb` goes through the same checks as a
`.keras` config (Lambda bytecode, dangerous module names).

The folder is cleared to run when this audit has no error; only then does kerascheck
import and run its serving function (kerascheck.formats.savedmodel.serving).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from kerascheck.facts.spec import LayerSpec
from kerascheck.formats.savedmodel.reader import node_functions
from kerascheck.rule import Facts

MAX_OP_FINDINGS = 50  # one finding per op after that would bury the report; the rest are counted

# op -> (what it does, severity). Ops not registered in this TensorFlow are named here
# too when an attacker's custom-op library is known to use the name.
OPS = {}
for _names, _what in (
    (("ReadFile", "WholeFileReader", "WholeFileReaderV2", "TFRecordReader", "TFRecordReaderV2", "TextLineReader",
      "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader", "TFRecordDataset",
      "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
      "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "LMDBDataset", "ExperimentalLMDBDataset",
      "LoadDataset", "SnapshotDatasetReader", "SnapshotNestedDatasetReader", "SnapshotChunkDataset",
      "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "GenerateVocabRemapping",
      "LoadAndRemapMatrix", "ImmutableConst", "RecordInput", "Restore", "RestoreV2", "RestoreSlice",
      "DTensorRestoreV2"), "reads files"),
    (("MatchingFiles", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset", "ListSnapshotChunksDataset"),
     "lists files"),
    (("WriteFile", "Save", "SaveV2", "SaveSlices", "SaveDataset", "SaveDatasetV2", "DistributedSave",
      "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
      "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary",
      "WriteGraphSummary", "WriteRawProtoSummary", "FlushSummaryWriter", "StatsAggregatorSetSummaryWriter",
      "SnapshotDataset", "SnapshotDatasetV2", "Snapshot", "DumpTensor"), "writes files"),
    (("MergeV2Checkpoints", "DeleteFile", "DeleteRecursively", "RenameFile"), "deletes or moves files"),
    (("PyFunc", "PyFuncStateless", "EagerPyFunc"), "runs a Python function of the serving process"),
    (("RpcCall", "RpcClient", "RpcServer", "RpcServerRegister", "RpcServerStart", "DataServiceDataset",
      "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4", "RegisterDataset",
      "RegisterDatasetV2", "RemoteCall", "Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv"),
     "reaches the network"),
    (("LoadLibrary", "LoadOpLibrary", "LoadKernelLibrary", "LoadPluggableDevice"), "loads a native library"),
    (("DatasetFromGraph",), "builds a dataset from a graph held in a tensor, which no audit can see"),
    (("FileSystemSetConfiguration",), "changes how TensorFlow reaches file systems"),
):
    for _name in _names:
        OPS[_name] = (_what, "error")
for _name in ("CollectiveReduce", "CollectiveReduceV2", "CollectiveReduceV3", "CollectiveGather",
              "CollectiveGatherV2", "CollectiveBcastSend", "CollectiveBcastSendV2", "CollectiveBcastRecv",
              "CollectiveBcastRecvV2", "CollectiveAllToAllV2", "CollectiveAllToAllV3", "CollectivePermute",
              "CollectiveReduceScatterV2", "CollectiveInitializeCommunicator"):
    OPS[_name] = ("exchanges tensors with other TensorFlow workers", "warning")
# What TensorFlow writes into the save and restore functions of every SavedModel.
CHECKPOINT_OPS = {"SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints"}
DEBUG_OPS = {"DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
             "DebugNumericSummaryV2"}
INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "table_initializer", "saved_model_assets")


@dataclass
class Hit:
    function: str | None  # None: the top-level graph
    node: str
    op: str
    what: str
    severity: str
    on_load: bool = False  # reached from the init op, which the loader runs


@dataclass
class Audit:
    findings: list = field(default_factory=list)

    @property
    def blocking(self) -> list:
        return [f for f in self.findings if f.severity == "error" or f.evidence.get("cve")]

    @property
    def cleared(self) -> bool:
        return not self.blocking


def audit(spec, rule, config_check) -> Audit:
    """The folder's unsafe-code findings, made once per folder.

    The unsafe-code rule owns them: it passes itself (`rule`, for the findings' name, code and
    severity) and its check of a Keras config (`config_check`, run on tf.keras's metadata), so
    this module depends on no rule.
    """
    saved = spec.saved
    if saved.audit is None:
        result = Audit()
        result.findings.extend(_graph_findings(spec, rule))
        result.findings.extend(_file_findings(spec, rule))
        result.findings.extend(_metadata_findings(spec, config_check))
        saved.audit = result
    return saved.audit


def _source(spec) -> dict:
    path = os.path.join(spec.path, "saved_model.pb")
    rel = os.path.relpath(os.path.abspath(path))
    return {"file": path if rel.startswith("..") else rel, "line": 1}


# ----------------------------------------------------------------------- ops


def op_hits(saved) -> list[Hit]:
    from tensorflow.python.framework import op_def_registry

    library = saved.library
    graph = saved.meta.graph_def
    exempt_nodes, exempt_functions = _checkpoint_only(saved)
    on_load_nodes, on_load_functions = _init_reach(saved)
    hits = []

    def visit(nodes, function):
        for node in nodes:
            op = node.op
            if op in library:
                continue  # a call of a library function, audited in its own right
            if op in CHECKPOINT_OPS and (node.name in exempt_nodes if function is None
                                         else function in exempt_functions):
                continue
            load = (node.name in on_load_nodes) if function is None else function in on_load_functions
            found = _judge(node, op, op_def_registry)
            if found:
                hits.append(Hit(function, node.name, op, found[0], found[1], load))

    visit(graph.node, None)
    for name in sorted(library):
        visit(library[name].node_def, name)
    return hits


def _judge(node, op, registry) -> tuple[str, str] | None:
    if op in OPS:
        what, severity = OPS[op]
        if registry.get(op) is None:
            what += "; this TensorFlow does not know the op, so it comes from a custom library"
        return what, severity
    if registry.get(op) is None:
        return ("is not an op this TensorFlow knows: serving it needs a custom-op library loaded first, "
                "whose native code the folder does not show"), "error"
    if op == "PrintV2":
        stream = node.attr["output_stream"].s.decode("utf-8", "replace") if "output_stream" in node.attr else ""
        if stream.startswith("file://"):
            return f"appends to the file {stream[7:]!r}", "error"
    if op in DEBUG_OPS:
        urls = [u.decode("utf-8", "replace") for u in node.attr["debug_urls"].list.s] if "debug_urls" in node.attr \
            else []
        if urls:
            return f"sends tensors to {', '.join(repr(u) for u in urls[:3])}", "error"
    if op in ("DecodeProtoV2", "EncodeProto"):
        source = node.attr["descriptor_source"].s.decode("utf-8", "replace") if "descriptor_source" in node.attr \
            else "local://"
        if source and not source.startswith(("local://", "bytes://")):
            return f"reads the protobuf descriptors in {source!r}", "error"
    return None


def _graph_index(graph) -> dict:
    return {n.name: n for n in graph.node}


def _ancestors(index: dict, roots) -> set:
    seen, stack = set(), [r for r in roots if r in index]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for inp in index[name].input:
            src = inp.lstrip("^").split(":")[0]
            if src in index and src not in seen:
                stack.append(src)
    return seen


def _closure(saved, start) -> set:
    """Functions reachable from `start` through calls and function attributes."""
    seen, stack = set(), [f for f in start if f in saved.library]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for _, callee in saved.function_calls(saved.library[name]):
            if callee not in seen:
                stack.append(callee)
    return seen


def _node_functions(saved, nodes) -> set:

    index = _graph_index(saved.meta.graph_def)
    return {f for n in nodes for f in node_functions(index[n], saved.library)}


def _checkpoint_only(saved) -> tuple[set, set]:
    """Graph nodes and functions that only the saver reaches: where TensorFlow's own checkpoint ops live.

    A save or restore function that a signature, the init op or a restored object can
    also reach is no longer TensorFlow's bookkeeping, and its file ops are reported.
    """
    meta = saved.meta
    index = _graph_index(meta.graph_def)
    saver = meta.saver_def
    saver_roots = [n.split(":")[0] for n in (saver.save_tensor_name, saver.restore_op_name) if n]
    saver_nodes = _ancestors(index, saver_roots)
    other_nodes = set(index) - saver_nodes
    saver_functions = _closure(saved, _node_functions(saved, saver_nodes))
    objects = saved.objects
    named = set(objects.concrete_functions)
    for node in objects.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            named.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            named.add(node.bare_concrete_function.concrete_function_name)
    other_functions = _closure(saved, named | _node_functions(saved, other_nodes)
                               | (set(saved.library) - saver_functions))
    return saver_nodes - _ancestors(index, other_nodes), saver_functions - other_functions


def _init_reach(saved) -> tuple[set, set]:
    """Graph nodes and functions the loader runs by itself (the init op and its kin)."""
    meta = saved.meta
    index = _graph_index(meta.graph_def)
    roots = []
    init = meta.signature_def.get("__saved_model_init_op")
    if init is not None:
        roots += [t.name.split(":")[0] for t in init.outputs.values()]
    for key in INIT_COLLECTIONS:
        if key in meta.collection_def:
            roots += [n.split(":")[0] for n in meta.collection_def[key].node_list.value]
    nodes = _ancestors(index, roots)
    return nodes, _closure(saved, _node_functions(saved, nodes))


def _graph_findings(spec, rule):
    hits = op_hits(spec.saved)
    source = _source(spec)
    for hit in hits[:MAX_OP_FINDINGS]:
        where = f"function {hit.function}" if hit.function else "the top-level graph"
        when = ("the loader runs it by itself (it feeds the init op)" if hit.on_load else
                "anything that loads the folder and calls that function runs it")
        yield rule.finding(
            layer=None, severity=hit.severity,
            message=f"Node '{hit.node}' of {where} is op {hit.op}, which {hit.what}; {when}.",
            fix="Do not load or serve this folder; re-export the model from code you trust, with no file, "
                "network or Python ops in its functions (model.export(path) writes none).",
            evidence={"function": hit.function, "node": hit.node, "op": hit.op, "does": hit.what,
                      "runs_on_load": hit.on_load, "source": source},
        )
    if len(hits) > MAX_OP_FINDINGS:
        ops = sorted({h.op for h in hits[MAX_OP_FINDINGS:]})
        yield rule.finding(
            layer=None, severity=max((h.severity for h in hits[MAX_OP_FINDINGS:]), key=["warning", "error"].index),
            message=f"{len(hits) - MAX_OP_FINDINGS} more nodes like these ({', '.join(ops[:10])}).",
            fix="Do not load or serve this folder; re-export the model from code you trust.",
            evidence={"more_nodes": len(hits) - MAX_OP_FINDINGS, "ops": ops, "source": source},
        )


# --------------------------------------------------------------------- files


def _file_findings(spec, rule):
    saved = spec.saved
    inv = saved.inv
    referenced = set()
    for asset in saved.meta.asset_file_def:
        name = asset.filename
        norm = name.replace("\\", "/")
        if not name or norm.startswith("/") or ":" in norm[:3] or any(p == ".." for p in norm.split("/")):
            yield rule.finding(
                layer=None,
                message=f"The graph names the asset {name!r}, which points outside assets/: the loader hands the "
                        "graph that path, so the model reads a file it did not ship.",
                fix="Do not load this folder; re-export the model so that its assets are copied into assets/.",
                evidence={"asset": name, "source": _source(spec)},
            )
            continue
        referenced.add("assets/" + norm)
        if not inv.has("assets/" + norm):
            yield rule.finding(
                layer=None, severity="warning",
                message=f"The graph names the asset {name!r}, but assets/ does not hold it (an incomplete copy?).",
                fix="Copy the whole folder that model.export() wrote, or re-export the model.",
                evidence={"asset": name},
            )
    unreferenced = [rel for rel in sorted(inv.files) if rel.startswith("assets/") and rel not in referenced]
    odd = inv.unexpected() + unreferenced
    if odd:
        listed = ", ".join(repr(r) for r in odd[:10]) + (f" and {len(odd) - 10} more" if len(odd) > 10 else "")
        yield rule.finding(
            layer=None, severity="warning",
            message=f"The folder holds {len(odd)} file{'s' if len(odd) > 1 else ''} TensorFlow does not write "
                    f"(or that no graph node names): {listed}. TensorFlow ignores them, but whoever put them there "
                    "may expect a loader that does not.",
            fix="Ship only what model.export() or tf.saved_model.save() wrote: saved_model.pb, fingerprint.pb, "
                "variables/ and the assets the graph names.",
            evidence={"files": odd[:100]},
        )


# ------------------------------------------------------------ keras_metadata


def _metadata_findings(spec, config_check):
    """tf.keras's configs, through the same checks a .keras config gets.

    A Functional or Sequential model's config was read into the spec's layers already,
    as for an .h5 file; a subclassed model has no layer list, so each layer's own entry
    in keras_metadata.pb stands in for it.
    """

    nodes = spec.saved.keras_metadata
    if not nodes:
        return
    view = dataclasses.replace(spec, format="keras_metadata", notes=())
    if not spec.config:
        # A config with a layer list, as Keras writes for Functional models, built from the entries:
        # the layers share their config dicts with it, so findings name the layer they are in.
        names = {path: meta.get("name") for path, _, meta in nodes if isinstance(meta.get("name"), str)}
        layers, entries = [], []
        for path, identifier, meta in nodes:
            if path == "root" or not isinstance(meta.get("class_name"), str) \
                    or not isinstance(meta.get("config"), dict):
                continue
            parts = path.split(".")
            qual = [names[".".join(parts[:k])] for k in range(2, len(parts) + 1) if ".".join(parts[:k]) in names]
            name = qual[-1] if qual else parts[-1]
            module = meta.get("module") if isinstance(meta.get("module"), str) else None
            entries.append({"class_name": meta["class_name"], "name": name, "config": meta["config"],
                            **({"module": module} if module else {})})
            layers.append(LayerSpec(name=name, class_name=meta["class_name"], module=module, registered_name=None,
                                    config=meta["config"], inbound=(), scope=tuple(qual[:-1]), weights=()))
        root = next((m for p, _, m in nodes if p == "root"), {})
        config = {"class_name": str(root.get("class_name") or "Model"),
                  "config": {"name": str(root.get("name") or spec.name), "layers": entries}}
        view = dataclasses.replace(view, layers=tuple(layers), config=config)
    source = {"file": os.path.join(os.path.dirname(_source(spec)["file"]), "keras_metadata.pb"), "line": 1}
    for finding in config_check(Facts(spec=view)):
        yield dataclasses.replace(finding, message="keras_metadata.pb: " + finding.message,
                                  evidence={**finding.evidence, "source": source})
