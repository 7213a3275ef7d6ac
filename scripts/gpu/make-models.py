#!/usr/bin/env python3
"""Makes the GPU machine's model repositories with its own PyTorch (seeded
weights, TorchScript), for the GPU tests and benchmarks (docs/gpu.md).

usage: make-models.py OUT_DIR
  OUT_DIR/test-repo   resnet18-cpu, resnet18-fp32, resnet18-fp16 (one file),
                      resnet18-aoti (the same weights as an AOTInductor .pt2),
                      hog (allocates rows x 4 GiB on the GPU: out of memory at
                      batch 64), host-sync (x + 1, reading a GPU value on the
                      host, so that no CUDA graph can capture it)
  OUT_DIR/bench-repo  {squeezenet,resnet50,vgg16}-{fp32,fp16,bf16} (eager, as the
                      in-process loop runs), resnet50-fp16-graphs (CUDA graphs,
                      the default on CUDA), add-one-cpu (x + 1 on 4 numbers, on
                      the CPU: what the socket costs with next to no compute)
A repository already made is kept (the script is re-run on every call)."""
import json
import os
import sys

import torch
import torchvision

IMAGE = {"name": "input", "datatype": "FP32", "dims": [-1, 3, 224, 224]}
SCORES = {"name": "output", "datatype": "FP32", "dims": [-1, 1000]}


def write_model(repo, name, pt_file, config):
    os.makedirs(f"{repo}/{name}/1", exist_ok=True)
    target = f"{repo}/{name}/1/model.pt"
    if not os.path.exists(target):
        os.link(pt_file, target)  # one file serves every precision
    with open(f"{repo}/{name}/config.json", "w") as f:
        json.dump(config, f, indent=1)


def traced(net, path):
    if not os.path.exists(path):
        torch.manual_seed(0)
        torch.jit.trace(net.eval(), torch.randn(1, 3, 224, 224)).save(path)
    return path


class AddOne(torch.nn.Module):
    def forward(self, x):
        return x + 1


class HostSync(torch.nn.Module):
    def forward(self, x):
        # Reads a GPU value on the host: no CUDA graph can capture this.
        if bool(x.sum() > 1e30):
            return x * 2
        return x + 1


class Hog(torch.nn.Module):
    def forward(self, x):
        big = torch.ones([x.shape[0], 1 << 30], device=x.device, dtype=x.dtype)
        return x + big.sum(dim=1, keepdim=True)


def main(out):
    files = f"{out}/files"
    os.makedirs(files, exist_ok=True)
    test = f"{out}/test-repo"
    torch.manual_seed(0)
    r18 = traced(torchvision.models.resnet18(), f"{files}/resnet18.pt")
    batching = {"max_queue_delay_us": 2000}
    for name, device, precision in [("resnet18-cpu", "cpu", "fp32"), ("resnet18-fp32", "cuda", "fp32"),
                                    ("resnet18-fp16", "cuda", "fp16")]:
        write_model(test, name, r18, {"max_batch_size": 8, "inputs": [IMAGE], "outputs": [SCORES],
                                      "device": device, "precision": precision, "dynamic_batching": batching})
    # The same ResNet-18 as an AOTInductor package (.pt2), batch 1 to 8.
    aoti = f"{files}/resnet18.pt2"
    try:
        if os.environ.get("KUBEACCEL_NO_AOTI"):  # a short run that needs no .pt2 (it takes a minute to compile)
            raise RuntimeError("KUBEACCEL_NO_AOTI is set")
        if not os.path.exists(aoti):
            torch.manual_seed(0)
            net = torchvision.models.resnet18().eval().cuda()
            batch = torch.export.Dim("batch", min=1, max=8)
            ep = torch.export.export(net, (torch.randn(2, 3, 224, 224, device="cuda"),),
                                     dynamic_shapes={"x": {0: batch}})
            torch._inductor.aoti_compile_and_package(ep, package_path=aoti)
        os.makedirs(f"{test}/resnet18-aoti/1", exist_ok=True)
        if not os.path.exists(f"{test}/resnet18-aoti/1/model.pt2"):
            os.link(aoti, f"{test}/resnet18-aoti/1/model.pt2")
        with open(f"{test}/resnet18-aoti/config.json", "w") as f:
            json.dump({"max_batch_size": 8, "inputs": [IMAGE], "outputs": [SCORES], "device": "cuda"}, f)
    except Exception as e:  # the test that needs it then fails, saying the model is missing
        print(f"make-models: no AOTInductor package: {e}", file=sys.stderr)
    hog = f"{files}/hog.pt"
    if not os.path.exists(hog):
        torch.jit.script(Hog()).save(hog)
    host_sync = f"{files}/host-sync.pt"
    if not os.path.exists(host_sync):
        torch.jit.script(HostSync()).save(host_sync)
    write_model(test, "host-sync", host_sync, {"max_batch_size": 8, "device": "cuda",
                                               "inputs": [{"name": "x", "datatype": "FP32", "dims": [-1, 4]}],
                                               "outputs": [{"name": "y", "datatype": "FP32", "dims": [-1, 4]}]})
    write_model(test, "hog", hog, {"max_batch_size": 64, "device": "cuda",
                                   "inputs": [{"name": "x", "datatype": "FP32", "dims": [-1, 4]}],
                                   "outputs": [{"name": "y", "datatype": "FP32", "dims": [-1, 4]}]})

    bench = f"{out}/bench-repo"
    nets = {"squeezenet": torchvision.models.squeezenet1_1, "resnet50": torchvision.models.resnet50,
            "vgg16": torchvision.models.vgg16}
    for arch, make in nets.items():
        pt = traced(make(), f"{files}/{arch}.pt")
        for precision in ["fp32", "fp16", "bf16"]:
            write_model(bench, f"{arch}-{precision}", pt, {
                "max_batch_size": 256, "inputs": [IMAGE], "outputs": [SCORES], "device": "cuda",
                "precision": precision, "instance_count": 2, "cuda_graphs": False,
                "dynamic_batching": {"max_queue_delay_us": 100}})
    # The same with CUDA graphs, for the figures that compare both.
    write_model(bench, "resnet50-fp16-graphs", f"{files}/resnet50.pt", {
        "max_batch_size": 256, "inputs": [IMAGE], "outputs": [SCORES], "device": "cuda", "precision": "fp16",
        "instance_count": 2, "cuda_graphs": True, "dynamic_batching": {"max_queue_delay_us": 100}})
    add_one = f"{files}/add-one.pt"
    if not os.path.exists(add_one):
        torch.jit.script(AddOne()).save(add_one)
    write_model(bench, "add-one-cpu", add_one, {
        "max_batch_size": 8, "device": "cpu",
        "inputs": [{"name": "x", "datatype": "FP32", "dims": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "dims": [-1, 4]}]})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
