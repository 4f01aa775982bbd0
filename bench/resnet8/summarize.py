#!/usr/bin/python3
"""Writes bench/RESNET8.md from bench/resnet8/results.jsonl (bench/resnet8/run.sh's lines): per
invocation (one machine, one sitting) and run kind, the final test accuracy's mean, SD and n over
seeds, the median training speed, and the ratio of ctnn's speed to PyTorch's in that invocation."""
import json, os, statistics as st
from collections import defaultdict

here = os.path.dirname(os.path.abspath(__file__))
rows = [json.loads(l) for l in open(os.path.join(here, "results.jsonl")) if l.strip()]
by_inv = defaultdict(lambda: defaultdict(list))
for r in rows:
    by_inv[r["invocation"]][r["run"]].append(r)

out = ["# ResNet-8 on Fashion-MNIST: ctnn and PyTorch", "",
       "Written by `bench/resnet8/summarize.py` from `bench/resnet8/results.jsonl`; the runs come from",
       "`bash bench/resnet8/run.sh` (its header gives the recipes). Accuracy: the final epoch's test",
       "accuracy on the 10,000 test images, mean and sample SD over seeds. Speed: training images per",
       "second of the best epoch of each run, median over the runs; the ratio compares ctnn with",
       "PyTorch measured in the same invocation.", ""]
for inv in sorted(by_inv):
    kinds = by_inv[inv]
    any_r = next(iter(kinds.values()))[0]
    out.append(f"## {inv} (commit {any_r.get('commit', '?')}, CPU family/model {any_r.get('cpu', '?')})")
    out.append("")
    out.append("| run | epochs | n | seeds | test accuracy mean | SD | min-max | train img/s (median) |")
    out.append("|---|---|---|---|---|---|---|---|")
    speed = {}
    for run in sorted(kinds):
        rs = kinds[run]
        acc = [r["test_accuracy_per_epoch"][-1] for r in rs]
        ips = [r["train_images_per_s"] for r in rs]
        speed[run] = st.median(ips)
        sd = f"{st.stdev(acc):.4f}" if len(acc) > 1 else "-"
        out.append(f"| {run} | {len(rs[0]['test_accuracy_per_epoch'])} | {len(acc)} | "
                   f"{' '.join(str(r['seed']) for r in rs)} | {st.mean(acc):.4f} | {sd} | "
                   f"{min(acc):.4f}-{max(acc):.4f} | {speed[run]:.0f} |")
    if "ctnn:torch" in speed and "pytorch:torch" in speed:
        out.append("")
        out.append(f"ctnn / PyTorch training speed at the same recipe: "
                   f"{speed['ctnn:torch'] / speed['pytorch:torch']:.2f}x.")
    out.append("")
    out.append("Test accuracy by epoch:")
    out.append("")
    for run in sorted(kinds):
        for r in kinds[run]:
            out.append(f"- {run} seed {r['seed']}: " +
                       " ".join(f"{a:.4f}" for a in r["test_accuracy_per_epoch"]))
    out.append("")
open(os.path.join(here, "..", "RESNET8.md"), "w").write("\n".join(out))
print("\n".join(out))
