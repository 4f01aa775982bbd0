#!/usr/bin/python3
"""PyTorch peer of bench/cost_bench.cpp: training images/s of a model at a batch size, measured
the same way (Fashion-MNIST in a shuffled order, each batch gathered from the dataset inside the
timed loop, Adam 1e-3 with Keras's epsilon 1e-7, cross-entropy on the logits; warm-up steps
covering window_images / 4 images (at least 5), then W windows of ceil(window_images / batch)
steps; images/s per window, median reported). Prints one JSON line.

Models: seed (the peers' seed CNN), wide (Conv 64 -> Conv 64 -> MaxPool 2 -> Dense 256 -> 10),
resnet8 (../shared/peers/torch_resnet8.py's network, imported from --peers).
Usage: /usr/bin/python3 torch_cost.py --model seed|wide|resnet8 [--batch B] [--threads N]
       [--windows W] [--window-images I] [--peers DIR]"""
import argparse, gzip, json, math, os, statistics, struct, sys, time

import numpy as np
import torch
import torch.nn as nn

D = "/usr/share/datasets/fashion-mnist"


def idx(p):
    with gzip.open(p, "rb") as f:
        m, = struct.unpack(">I", f.read(4))
        dims = struct.unpack(">" + "I" * (m & 0xFF), f.read(4 * (m & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def build(name, peers):
    if name == "seed":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(26 * 26 * 32, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    if name == "wide":
        return nn.Sequential(nn.Conv2d(1, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12 * 12 * 64, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    if name == "resnet8":
        sys.path.insert(0, peers)
        import torch_resnet8
        return torch_resnet8.resnet8()
    raise SystemExit(f"unknown --model {name} (use seed, wide or resnet8)")


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--model", default="seed")
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--windows", type=int, default=5)
    a.add_argument("--window-images", type=int, default=6400)
    a.add_argument("--peers", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "../../../shared/peers"))
    o = a.parse_args()
    torch.manual_seed(42)
    torch.set_num_threads(o.threads)
    x = torch.from_numpy(idx(f"{D}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(idx(f"{D}/train-labels-idx1-ubyte.gz").astype(np.int64))
    net = build(o.model, o.peers)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    lossf = nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(42))
    pos = 0

    def step():
        nonlocal pos
        if pos + o.batch > len(order):
            pos = 0
        i = order[pos:pos + o.batch]
        pos += o.batch
        xb, yb = x[i], y[i]
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
        return float(loss)

    steps = math.ceil(o.window_images / o.batch)
    warm = max(5, math.ceil((o.window_images // 4) / o.batch))
    for _ in range(warm):
        step()
    ips = []
    for _ in range(o.windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        ips.append(steps * o.batch / (time.perf_counter() - t0))
    print(json.dumps({"peer": "pytorch " + torch.__version__, "model": o.model, "batch": o.batch,
                      "threads": o.threads, "warmup_steps": warm, "steps_per_window": steps,
                      "windows_images_per_s": ips, "train_images_per_s": statistics.median(ips),
                      "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}))


if __name__ == "__main__":
    main()
