#!/usr/bin/python3
"""The seed model in PyTorch at a chosen seed and initialization, for ctnn's accuracy study.

Reuses the data reader and the network of ../shared/peers/torch_seed_cnn.py (imported, unchanged)
and trains it the same way (Adam 1e-3, batch 32, fresh permutation each epoch, 60,000 images),
adding two things the peer fixes: the seed (--seed) and the initialization (--init):
  torch  PyTorch's defaults (kaiming_uniform(a=sqrt(5)) weights, uniform biases): the peer itself
  keras  Keras' defaults: Glorot uniform weights, zero biases (what ctnn and the seed's Keras use)
Prints one JSON line: seed, init, test accuracy, final training loss of the last epoch.
"""
import argparse, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "peers"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch_seed_cnn as peer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--init", choices=["torch", "keras"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", default=peer.DATA)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr = torch.from_numpy(peer.idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    ytr = torch.from_numpy(peer.idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(peer.idx(f"{a.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    yte = torch.from_numpy(peer.idx(f"{a.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    m = peer.model()
    if a.init == "keras":
        for layer in m:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)  # fan-in/out as Keras counts them for conv too
                nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    n = xtr.shape[0]
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        perm = torch.randperm(n)
        m.train()
        total = 0.0
        for i in range(0, n, 32):
            b = perm[i:i + 32]
            opt.zero_grad(set_to_none=True)
            loss = lossf(m(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
    m.eval()
    with torch.inference_mode():
        acc = sum((m(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                  for i in range(0, 10000, 1000)) / 10000
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "init": a.init, "seed": a.seed,
                      "epochs": a.epochs, "threads": a.threads, "test_accuracy": acc,
                      "last_epoch_loss": round(total / n, 4),
                      "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
