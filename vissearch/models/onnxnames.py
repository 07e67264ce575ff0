"""Layer names for a converted ONNX graph: the PyTorch module each node came from.

``(onnx graph) => {output tensor: layer name}``. PyTorch's exporter names a node after the
modules it ran in (``/layer1/layer1.0/conv1/Conv``); the tensor a module returns is the output of
its last node. That tensor's layer takes the module's qualified name (``layer1.0.conv1``); where
one tensor ends several modules, the outermost name wins (the last ReLU of ``layer1.1`` is
``layer1``). Other nodes are ``MODULE.OP`` (``layer1.0.Add``). A graph without PyTorch's node
names keeps its tensor names. No TensorFlow, no onnx import: it reads the protobuf it is given.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
SKIPPED = ("Constant",)  # nodes that compute nothing a target could name


def module_chain(node_name: str) -> list[str]:
    """The qualified names of the modules a node ran in, outermost first.

    ``/layer1/layer1.0/conv1/Conv`` gives ``[layer1, layer1.0, layer1.0.conv1]``: a part that
    extends its parent's name (``layer1.0``) replaces it, any other is appended to it.
    """
    parts = [p for p in node_name.split("/") if p][:-1]
    chain: list[str] = []
    for part in parts:
        parent = chain[-1] if chain else ""
        chain.append(part if not parent or part.startswith(parent + ".") else f"{parent}.{part}")
    return chain


def layer_names(graph) -> dict[str, str]:
    """Output tensor name -> layer name for every single-output node of ``graph``."""
    nodes = [n for n in graph.node if len(n.output) == 1 and n.op_type not in SKIPPED]
    depth_of_end: dict[int, tuple[int, str]] = {}  # node index -> (depth, outermost module)
    ends: dict[str, tuple[int, int]] = {}  # module -> (its last node, its depth)
    for i, node in enumerate(nodes):
        for depth, module in enumerate(module_chain(node.name)):
            ends[module] = (i, depth)
    for module, (i, depth) in ends.items():
        if i not in depth_of_end or depth < depth_of_end[i][0]:
            depth_of_end[i] = (depth, module)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for i, node in enumerate(nodes):
        chain = module_chain(node.name)
        if i in depth_of_end:
            name = depth_of_end[i][1]
        elif chain:
            name = f"{chain[-1]}.{node.name.rsplit('/', 1)[-1]}"
        else:
            name = node.name.strip("/") or node.output[0]
        names[node.output[0]] = _unique(_UNSAFE.sub("_", name) or "layer", taken)
    return names


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        k += 1
        out = f"{name}_{k}"
    taken.add(out)
    return out


def rename(graph, names: dict[str, str]) -> None:
    """Rename tensors in place: node outputs, the inputs that read them, the graph's outputs."""
    for node in graph.node:
        for seq in (node.input, node.output):
            for k, tensor in enumerate(seq):
                if tensor in names:
                    seq[k] = names[tensor]
    for out in graph.output:
        if out.name in names:
            out.name = names[out.name]
