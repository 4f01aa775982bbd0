#!/usr/bin/python3
"""Trains the seed model in PyTorch and exports it to ONNX, for ctnn's import test.

Writes, into OUT_DIR (default tests/onnx/data):
  torch_seed_cnn.onnx          the trained model (torch.onnx.export, opset 13, batch axis dynamic)
  torch_seed_cnn_outputs.bin   PyTorch's outputs (logits, float32 little-endian, 10,000 x 10) on
                               the Fashion-MNIST test images, scaled to [0, 1] as the training was
and prints PyTorch's test accuracy. The model and training are ../shared/peers/torch_seed_cnn.py's
(its model() and data reader): Conv2d(1, 32, 3) -> ReLU -> Flatten -> Linear(21632, 128) -> ReLU ->
Linear(128, 10), Adam 1e-3, batch 32, cross-entropy, seed 42. tests/onnx/test_onnx_import.cpp loads
the file into ctnn and compares the 10,000 predictions. Needs Debian's python3-torch and
python3-onnx (by hand only: the tests read the files this writes, not PyTorch).

  /usr/bin/python3 scripts/torch_seed_onnx.py [--epochs 1] [--peers ../shared/peers] [--out DIR]
"""
import argparse, importlib.util, os, sys
import numpy as np
import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--peers", default=os.path.join(here, "..", "..", "shared", "peers"))
ap.add_argument("--out", default=os.path.join(here, "..", "tests", "onnx", "data"))
a = ap.parse_args()

spec = importlib.util.spec_from_file_location("torch_seed_cnn", os.path.join(a.peers, "torch_seed_cnn.py"))
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)

torch.set_num_threads(2)
torch.manual_seed(42)
D = peer.DATA
xtr = torch.from_numpy(peer.idx(f"{D}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
ytr = torch.from_numpy(peer.idx(f"{D}/train-labels-idx1-ubyte.gz").astype(np.int64))
xte = torch.from_numpy(peer.idx(f"{D}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
yte = torch.from_numpy(peer.idx(f"{D}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
m = peer.model()
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
lossf = nn.CrossEntropyLoss()
for _ in range(a.epochs):
    perm = torch.randperm(xtr.shape[0])
    m.train()
    for i in range(0, xtr.shape[0], 32):
        b = perm[i:i + 32]
        opt.zero_grad(set_to_none=True)
        lossf(m(xtr[b]), ytr[b]).backward()
        opt.step()
m.eval()
with torch.inference_mode():
    logits = torch.cat([m(xte[i:i + 1000]) for i in range(0, 10000, 1000)])
acc = (logits.argmax(1) == yte).float().mean().item()
os.makedirs(a.out, exist_ok=True)
path = os.path.join(a.out, "torch_seed_cnn.onnx")
torch.onnx.export(m, xte[:1], path, opset_version=13, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
logits.numpy().astype("<f4").tofile(os.path.join(a.out, "torch_seed_cnn_outputs.bin"))
import onnx
onnx.checker.check_model(onnx.load(path))
print(f"pytorch {torch.__version__}: {a.epochs} epoch(s), test accuracy {acc:.4f}; wrote {path}")
