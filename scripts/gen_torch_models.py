"""TorchScript models for the torch backend (scripts/gen-models --torch OUTDIR).

Seeded random weights (nothing is downloaded), built with Debian 12's
python3-torch and python3-torchvision, scripted with torch.jit.script so the
batch dimension stays dynamic, and saved as OUTDIR/<name>/1/model.pt with a
config.json that declares the signature (TorchScript has none).

Models:
    squeezenet  torchvision SqueezeNet 1.1     data FP32 [N,3,224,224] -> logits FP32 [N,1000]
    resnet18    torchvision ResNet-18          input FP32 [N,3,224,224] -> logits FP32 [N,1000]
    resnet50    torchvision ResNet-50          input FP32 [N,3,224,224] -> logits FP32 [N,1000]
    pair        a, b FP32 [N,4] -> a dict {"diff": (a - b) @ W, "sum": a + b},
                declared in the order sum, diff (outputs mapped by name)
    fragile     x FP32 [N,4] -> y = 2x, and raises "fragile: negative input"
                when any value is negative (tests of a model that throws)
With --onnx-resnet50 DIR, also DIR/resnet50/1/model.onnx: the same
ResNet-50 (same weights) exported to ONNX for the opencv-cpu backend, for the
benchmark's side-by-side comparison, without the Identity nodes OpenCV 4.6
cannot import.
"""

import io
import json
import os

import torch
import torchvision

SEED = 20240611
IMAGE = [-1, 3, 224, 224]


class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 4))

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return {"diff": (a - b) @ self.w, "sum": a + b}


class Fragile(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        if bool((x < 0).any()):
            raise RuntimeError("fragile: negative input")
        return x * 2


def spec(name, dims, datatype="FP32"):
    return {"name": name, "datatype": datatype, "dims": dims}


def image_model(ctor, input_name):
    return (lambda: ctor(weights=None),
            {"max_batch_size": 8, "inputs": [spec(input_name, IMAGE)], "outputs": [spec("logits", [-1, 1000])]})


MODELS = {
    "squeezenet": image_model(torchvision.models.squeezenet1_1, "data"),
    "resnet18": image_model(torchvision.models.resnet18, "input"),
    "resnet50": image_model(torchvision.models.resnet50, "input"),
    "pair": (Pair, {"max_batch_size": 8,
                    "dynamic_batching": {"max_queue_delay_us": 20000, "preferred_batch_sizes": [8]},
                    "inputs": [spec("a", [-1, 4]), spec("b", [-1, 4])],
                    "outputs": [spec("sum", [-1, 4]), spec("diff", [-1, 4])]}),
    "fragile": (Fragile, {"max_batch_size": 8, "inputs": [spec("x", [-1, 4])], "outputs": [spec("y", [-1, 4])]}),
}


def build(name):
    """The model `name` in eval mode, weights from its own seed."""
    torch.manual_seed(SEED + sum(map(ord, name)))
    ctor, _ = MODELS[name]
    return ctor().eval()


def without_identities(model_bytes):
    """The ONNX model with its Identity nodes removed, each consumer reading
    the Identity's input instead. The exporter deduplicates equal weights
    (after folding batch norms, biases often are) into one initializer plus
    an Identity per other use, and OpenCV 4.6 cannot import an Identity over
    an initializer ("Node [Identity@ai.onnx] parse error ... inputs.size()")."""
    import onnx
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    graph_outputs = {o.name for o in graph.output}
    if alias.keys() & graph_outputs:
        return model_bytes  # an output is an Identity's: leave the graph as exported
    kept = [n for n in graph.node if n.op_type != "Identity"]
    for n in kept:
        for i, name in enumerate(n.input):
            while name in alias:
                name = alias[name]
            n.input[i] = name
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def generate(outdir, names, write_if_changed, quiet, onnx_resnet50=None):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for name in names:
        model = build(name)
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(model), buf)
        path = os.path.join(outdir, name, "1", "model.pt")
        changed = write_if_changed(path, buf.getvalue())
        cfg = (json.dumps(MODELS[name][1], indent=2) + "\n").encode()
        changed |= write_if_changed(os.path.join(outdir, name, "config.json"), cfg)
        if not quiet:
            print("%s %s (%d bytes)" % ("wrote" if changed else "unchanged", path, len(buf.getvalue())))
    if onnx_resnet50:
        buf = io.BytesIO()
        # Opset 13 with constant folding: what OpenCV 4.6's importer takes.
        torch.onnx.export(build("resnet50"), torch.zeros(1, 3, 224, 224), buf, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        path = os.path.join(onnx_resnet50, "resnet50", "1", "model.onnx")
        write_if_changed(path, without_identities(buf.getvalue()))
        write_if_changed(os.path.join(onnx_resnet50, "resnet50", "config.json"), b'{"max_batch_size": 8}\n')
