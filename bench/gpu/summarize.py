#!/usr/bin/env python3
"""Summarizes a GPU run's CSV (scripts/gpu/run-on-gpu bench) against the
targets of the GPU issue; prints a table and writes summary.csv next to them.

usage: summarize.py RESULTS_DIR"""
import csv
import json
import glob
import os
import sys


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main(d):
    out = []

    def figure(name, value, target, met, note=""):
        out.append({"figure": name, "value": value, "target": target or "-",
                    "met": "-" if not target else "yes" if met else "NO", "note": note})

    inproc = rows(f"{d}/inprocess.csv")
    alone = {int(r["batch"]): r for r in inproc if r["label"] == "resnet50-alone"}
    # The same engine in a C++ loop through the backend's ABI (bin/backend_loop), batch 1.
    loop = {r["label"][len("backend-"):]: r for r in inproc if r["label"].startswith("backend-")}
    sliced = []
    for p in sorted(glob.glob(f"{d}/timesliced*.csv")):
        with open(p) as f:
            line = f.read().strip().split(",")
        sliced.append({"images_per_s": float(line[4]), "p99": float(line[6])})

    def b1_added(name, model, transport, target):
        p = f"{d}/b1-{model}-{transport}.csv"
        if model not in loop or not os.path.exists(p):
            return
        slot = float(rows(p)[0]["latency_median_ms"])
        base = float(loop[model]["latency_p50_ms"])
        added = (slot - base) * 1000
        figure(name, f"{added:.0f} us (p50 {slot:.3f} ms through the slot vs {base:.3f} ms in the loop)",
               target, added <= 100, inside_agent(f"{d}/b1-{model}-{transport}"))

    def inside_agent(prefix):
        """The agent's own ModelStatistics over one run, warm-up included (stats0/stats1.json, taken
        around it): mean time from a request's arrival to its answer, and the
        queue and compute parts of it."""
        try:
            with open(f"{prefix}.stats0.json") as f0, open(f"{prefix}.stats1.json") as f1:
                s0, s1 = (json.load(f)["modelStats"][0]["inferenceStats"] for f in (f0, f1))
        except (OSError, ValueError, KeyError, IndexError):
            return ""

        def mean_us(*keys):
            n = int(s1["success"].get("count", 0)) - int(s0["success"].get("count", 0))
            ns = sum(int(s1.get(k, {}).get("ns", 0)) - int(s0.get(k, {}).get("ns", 0)) for k in keys)
            return ns / n / 1000 if n > 0 else float("nan")

        return (f"in the agent, mean: {mean_us('success'):.0f} us from arrival to answer, of which queued "
                f"{mean_us('queue'):.0f}, computing {mean_us('computeInput', 'computeInfer', 'computeOutput'):.0f}")

    def against_time_slicing(name, prefix, note=""):
        pods = [rows(p)[0] for p in sorted(glob.glob(f"{d}/{prefix}-slot*.csv"))]
        if not pods or not sliced:
            return
        pi = sum(float(p["images_per_s"]) for p in pods)
        pp = max(float(p["latency_p99_ms"]) for p in pods)
        si = sum(s["images_per_s"] for s in sliced)
        sp = max(s["p99"] for s in sliced)
        figure(name, f"{pi / si:.2f}x img/s ({pi:.0f} vs {si:.0f}); p99 {pp:.2f} vs {sp:.2f} ms",
               ">= 3x at no worse p99", pi / si >= 3 and pp <= sp, note.format(pods=len(pods), sliced=len(sliced)))

    if os.path.exists(f"{d}/resnet50-b256.csv") and 256 in alone:  # not in a latency-only run
        best256 = max(rows(f"{d}/resnet50-b256.csv"), key=lambda r: float(r["images_per_s"]))
        r = float(best256["images_per_s"]) / float(alone[256]["images_per_s"])
        figure("ResNet-50 FP16 b256 shm img/s vs in-process", f"{r:.3f} ({float(best256['images_per_s']):.0f} vs "
               f"{float(alone[256]['images_per_s']):.0f}, {best256['concurrency']} client(s))", ">= 0.95", r >= 0.95)
    b1_added("ResNet-50 FP16 b1 p50 added by the socket (CUDA graphs, shm)", "resnet50-fp16-graphs", "shm",
             "<= 100 us")
    b1_added("same, raw contents", "resnet50-fp16-graphs", "raw", "")
    b1_added("same, eager (shm)", "resnet50-fp16", "shm", "")
    b1_added("same, eager (raw contents)", "resnet50-fp16", "raw", "")
    b1_added("the socket alone: add-one-cpu b1 p50 added (raw contents)", "add-one-cpu", "raw", "")
    # The same requests on one ModelStreamInfer stream per client (--stream).
    b1_added("ResNet-50 FP16 b1 p50 added, CUDA graphs, shm, on a stream", "resnet50-fp16-graphs", "shm-stream",
             "<= 100 us")
    b1_added("same, raw contents, on a stream", "resnet50-fp16-graphs", "raw-stream", "")
    b1_added("the socket alone on a stream: add-one-cpu (raw contents)", "add-one-cpu", "raw-stream", "")
    against_time_slicing("8 pods b1 through 8 slots vs 8 time-sliced processes", "pods8",
                         "{pods} pods, {sliced} processes")
    against_time_slicing("8 pods b1 through 8 slots, CUDA graphs, vs 8 time-sliced processes", "graphs-pods8")
    if os.path.exists(f"{d}/victim-flooded.csv"):
        victim = rows(f"{d}/victim-alone.csv")[0]
        flooded = rows(f"{d}/victim-flooded.csv")[0]
        ratio = float(flooded["latency_p99_ms"]) / float(victim["latency_p99_ms"])
        figure("victim p99 next to a flooding pod vs alone", f"{ratio:.2f}x ({flooded['latency_p99_ms']} vs "
               f"{victim['latency_p99_ms']} ms)", "<= 2x", ratio <= 2)

    with open(f"{d}/summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["figure", "value", "target", "met", "note"])
        w.writeheader()
        w.writerows(out)
    for o in out:
        print(f"{o['met']:>3}  {o['figure']}: {o['value']} (target {o['target']}) {o['note']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
