#!/usr/bin/env python3
"""Summarizes a GPU run's CSV (scripts/gpu/run-on-gpu bench) against the
targets of the GPU issue; prints a table and writes summary.csv next to them.

usage: summarize.py RESULTS_DIR"""
import csv
import glob
import os
import sys


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main(d):
    out = []
    inproc = rows(f"{d}/inprocess.csv")
    alone = {int(r["batch"]): r for r in inproc if r["label"] == "resnet50-alone"}
    b256 = rows(f"{d}/resnet50-b256.csv")
    best256 = max(b256, key=lambda r: float(r["images_per_s"]))
    raw1 = rows(f"{d}/resnet50-b1-raw.csv")[0]
    shm1 = rows(f"{d}/resnet50-b1-shm.csv")[0]
    pods = [rows(p)[0] for p in sorted(glob.glob(f"{d}/pods8-slot*.csv"))]
    sliced = []
    for p in sorted(glob.glob(f"{d}/timesliced*.csv")):
        with open(p) as f:
            line = f.read().strip().split(",")
        sliced.append({"images_per_s": float(line[4]), "p99": float(line[6])})
    for name in ["raw", "shm"]:
        p = f"{d}/resnet50-graphs-b1-{name}.csv"
        if os.path.exists(p):
            g = rows(p)[0]
            added = (float(g["latency_median_ms"]) - float(alone[1]["latency_p50_ms"])) * 1000
            out.append({"figure": f"ResNet-50 FP16 b1 p50, CUDA graphs, vs eager in-process ({name})",
                        "value": f"{added:.0f} us (p50 {g['latency_median_ms']} ms vs {alone[1]['latency_p50_ms']} ms)",
                        "target": "<= 100 us", "met": "yes" if added <= 100 else "NO", "note": ""})
    gpods = [rows(p)[0] for p in sorted(glob.glob(f"{d}/graphs-pods8-slot*.csv"))]
    victim = rows(f"{d}/victim-alone.csv")[0]
    flooded = rows(f"{d}/victim-flooded.csv")[0]

    def figure(name, value, target, met, note=""):
        out.append({"figure": name, "value": value, "target": target, "met": "yes" if met else "NO", "note": note})

    r = float(best256["images_per_s"]) / float(alone[256]["images_per_s"])
    figure("ResNet-50 FP16 b256 shm img/s vs in-process", f"{r:.3f} ({float(best256['images_per_s']):.0f} vs "
           f"{float(alone[256]['images_per_s']):.0f}, {best256['concurrency']} client(s))", ">= 0.95", r >= 0.95)
    for name, row in [("raw", raw1), ("shm", shm1)]:
        added = (float(row["latency_median_ms"]) - float(alone[1]["latency_p50_ms"])) * 1000
        figure(f"ResNet-50 FP16 b1 p50 added by the socket ({name})", f"{added:.0f} us (p50 {row['latency_median_ms']} ms "
               f"vs {alone[1]['latency_p50_ms']} ms)", "<= 100 us", added <= 100)
    if pods and sliced:
        pi = sum(float(p["images_per_s"]) for p in pods)
        pp = max(float(p["latency_p99_ms"]) for p in pods)
        si = sum(s["images_per_s"] for s in sliced)
        sp = max(s["p99"] for s in sliced)
        figure("8 pods b1 through 8 slots vs 8 time-sliced processes", f"{pi / si:.2f}x img/s ({pi:.0f} vs {si:.0f}); "
               f"p99 {pp:.2f} vs {sp:.2f} ms", ">= 3x at no worse p99", pi / si >= 3 and pp <= sp,
               f"{len(pods)} pods, {len(sliced)} processes")
    if gpods and sliced:
        pi = sum(float(p["images_per_s"]) for p in gpods)
        pp = max(float(p["latency_p99_ms"]) for p in gpods)
        si = sum(s["images_per_s"] for s in sliced)
        sp = max(s["p99"] for s in sliced)
        figure("8 pods b1 through 8 slots, CUDA graphs, vs 8 time-sliced processes",
               f"{pi / si:.2f}x img/s ({pi:.0f} vs {si:.0f}); p99 {pp:.2f} vs {sp:.2f} ms", ">= 3x at no worse p99",
               pi / si >= 3 and pp <= sp)
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
