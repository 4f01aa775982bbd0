#!/usr/bin/python3
"""Writes a bench/*.md table from a results.jsonl of training runs (one JSON line per run, as
bench/resnet8/run.sh and bench/lstm/run.sh append them): per invocation (one machine, one sitting)
and run kind, the final test accuracy's mean, SD and n over seeds, the median training speed over
the runs, and the ratio of ctnn's speed to the fastest peer run in the same invocation.

  summarize_runs.py RESULTS.jsonl OUT.md TITLE RUN_SCRIPT SPEED_NOTE
SPEED_NOTE says which per-run statistic train_images_per_s is (each run reports it)."""
import json, statistics as st, sys
from collections import defaultdict

results, out_path, title, script, speed_note = sys.argv[1:6]
rows = [json.loads(l) for l in open(results) if l.strip()]
by_inv = defaultdict(lambda: defaultdict(list))
for r in rows:
    by_inv[r["invocation"]][r["run"]].append(r)

source = "bench/" + results.split("/bench/")[-1]
out = [f"# {title}", "",
       f"Written by `bench/summarize_runs.py` from `{source}`; the runs come from `bash {script}`",
       "(its header gives the recipes). Accuracy: the final epoch's test accuracy on the 10,000 test",
       "images, mean and sample SD over seeds. Speed: training images (sequences) per second,",
       f"{speed_note}, median over the runs; the ratio compares ctnn with the fastest PyTorch run",
       "at the same recipe in the same invocation.", ""]
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
        speed[run] = st.median([r["train_images_per_s"] for r in rs])
        sd = f"{st.stdev(acc):.4f}" if len(acc) > 1 else "-"
        out.append(f"| {run} | {len(rs[0]['test_accuracy_per_epoch'])} | {len(acc)} | "
                   f"{' '.join(str(r['seed']) for r in rs)} | {st.mean(acc):.4f} | {sd} | "
                   f"{min(acc):.4f}-{max(acc):.4f} | {speed[run]:.0f} |")
    # Run kinds are impl:recipe[:variant]; ctnn is compared with PyTorch at the same recipe.
    recipe = lambda k: k.split(":")[1] if ":" in k else ""
    lines = []
    for k in sorted(k for k in speed if k.startswith("ctnn")):
        peers = [p for p in speed if p.startswith("pytorch") and recipe(p) == recipe(k)]
        if peers:
            best = max(peers, key=lambda p: speed[p])
            lines.append(f"- {k} / {best} (the fastest PyTorch run at that recipe) training speed: "
                         f"{speed[k] / speed[best]:.2f}x.")
    if lines:
        out += [""] + lines
    out.append("")
    out.append("Test accuracy by epoch:")
    out.append("")
    for run in sorted(kinds):
        for r in kinds[run]:
            out.append(f"- {run} seed {r['seed']}: " +
                       " ".join(f"{a:.4f}" for a in r["test_accuracy_per_epoch"]))
    out.append("")
open(out_path, "w").write("\n".join(out))
print("\n".join(out))
