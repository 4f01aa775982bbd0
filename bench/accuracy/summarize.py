#!/usr/bin/env python3
"""Summarize bench/accuracy/results.jsonl (written by run.sh) into bench/ACCURACY.md.

Per configuration (implementation x initialization): runs, mean, standard deviation, min, median,
max, and how many runs reach the seed example's bar of 0.905; then Welch's t-test between
configurations (difference of means, its 95% interval, two-sided p), so that a gap between ctnn
and PyTorch can be told from the spread between seeds. Standard library only.
  summarize.py [--in FILE] [--out FILE]
"""
import argparse, json, math, statistics, sys
from collections import OrderedDict

BAR = 0.905


def t_sf(t, df):
    """Two-sided p of Student's t with df degrees of freedom (Simpson's rule on the density)."""
    t = abs(t)
    if t == 0:
        return 1.0
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)
    n = 2000
    h = t / n
    s = f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return max(0.0, 1 - 2 * s * h / 3)


def t_quantile(df, p=0.975):
    lo, hi = 0.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 1 - t_sf(mid, df) / 2 < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def welch(a, b):
    ma, mb = statistics.mean(a), statistics.mean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    se = math.sqrt(va / len(a) + vb / len(b))
    df = (va / len(a) + vb / len(b)) ** 2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    t = (ma - mb) / se
    q = t_quantile(df)
    return ma - mb, (ma - mb - q * se, ma - mb + q * se), t_sf(t, df), df


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", default="bench/accuracy/results.jsonl")
    ap.add_argument("--out", default="bench/ACCURACY.md")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.inp) if l.strip()]
    # One result per (implementation, init, seed) in the statistics: a seed run twice (e.g. by
    # the example and by seed_accuracy, or at 1 and 2 threads) must give the same accuracy.
    by_seed = OrderedDict()
    repeats = []
    for r in rows:
        k = (r["impl"], r["init"], r["seed"])
        if k in by_seed:
            repeats.append((k, by_seed[k]["test_accuracy"], r["test_accuracy"]))
        else:
            by_seed[k] = r
    groups = OrderedDict()
    for key in [("ctnn", "keras"), ("pytorch", "keras"), ("ctnn", "torch"), ("pytorch", "torch")]:
        accs = [r["test_accuracy"] for k, r in by_seed.items() if k[:2] == key]
        if accs:
            groups[key] = accs
    out = []
    w = out.append
    w("# The seed model's test accuracy over seeds: ctnn next to PyTorch\n")
    w("Written by `bench/accuracy/summarize.py` from `bench/accuracy/results.jsonl` (do not edit by hand).")
    w("Each run trains the seed model (Conv2D 32 3x3 ReLU, Flatten, Dense 128 ReLU, Dense 10 softmax) with")
    w("Adam 1e-3, batch 32, 10 epochs on the 60,000 Fashion-MNIST training images, shuffled every epoch, and")
    w("scores the 10,000 test images. `keras` init = Glorot uniform kernels and zero biases (Keras's defaults,")
    w("ctnn's defaults and the seed example's); `torch` init = PyTorch's defaults (U(+-1/sqrt(fan_in)) for")
    w("kernels and biases, `ctnn::init::TorchUniform` in ctnn). ctnn runs are `bench/accuracy/seed_accuracy`")
    w("(the same training as `examples/fashion_mnist`); PyTorch runs are `bench/accuracy/torch_seed_runs.py`,")
    w("which imports the network and data reader of `../shared/peers/torch_seed_cnn.py` and trains as it does.\n")
    w(f"## Per configuration (bar: {BAR})\n")
    w("| Implementation | Init | Runs | Mean | SD | Min | Median | Max | Runs >= bar | Seeds |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for (impl, init), accs in groups.items():
        seeds = sorted(k[2] for k in by_seed if k[:2] == (impl, init))
        sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        w(f"| {impl} | {init} | {len(accs)} | {statistics.mean(accs):.4f} | {sd:.4f} | {min(accs):.4f} | "
          f"{statistics.median(accs):.4f} | {max(accs):.4f} | {sum(x >= BAR for x in accs)} of {len(accs)} | "
          f"{', '.join(map(str, seeds))} |")
    w("\n## Differences (Welch's t-test)\n")
    w("| Comparison | Difference of means | 95% interval | p (two-sided) |")
    w("|---|---|---|---|")
    pairs = [(("ctnn", "keras"), ("pytorch", "keras")), (("ctnn", "torch"), ("pytorch", "torch")),
             (("ctnn", "torch"), ("ctnn", "keras")), (("pytorch", "torch"), ("pytorch", "keras")),
             (("ctnn", "keras"), ("pytorch", "torch"))]
    for x, y in pairs:
        if x in groups and y in groups and len(groups[x]) > 1 and len(groups[y]) > 1:
            d, (lo, hi), p, df = welch(groups[x], groups[y])
            w(f"| {x[0]} {x[1]} - {y[0]} {y[1]} | {d:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {p:.2f} |")
    if repeats:
        w("\n## Seeds run more than once (the statistics count each seed once)\n")
        w("| Implementation | Init | Seed | First | Again | Same |")
        w("|---|---|---|---|---|---|")
        for (impl, init, seed), first, again in repeats:
            w(f"| {impl} | {init} | {seed} | {first:.4f} | {again:.4f} | {'yes' if first == again else 'NO'} |")
    w("\n## Every run\n")
    w("| Implementation | Init | Seed | Test accuracy | Last epoch's training loss | Threads | Commit | Date (UTC) | CPU | Source |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["impl"], r["init"], r["seed"])):
        w(f"| {r['impl']} | {r['init']} | {r['seed']} | {r['test_accuracy']:.4f} | {r.get('last_epoch_loss', '')} | "
          f"{r.get('threads', '')} | {r.get('commit', '')} | {r.get('date', '')} | {r.get('cpu', '')} | "
          f"{r.get('source', 'bench/accuracy/run.sh')} |")
    w("")
    open(a.out, "w").write("\n".join(out) + "\n")
    print(f"wrote {a.out}: {len(rows)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
