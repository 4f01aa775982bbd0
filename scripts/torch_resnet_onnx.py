#!/usr/bin/python3
"""Trains a small residual CNN with BatchNormalization in PyTorch and exports it to ONNX, for
ctnn's import test (tests/onnx/test_onnx_torch_models.cpp).

The model: Conv2d(1, 16, 3, padding=1) -> BatchNorm2d -> ReLU -> a residual block (3x3 conv, BatchNorm,
ReLU, 3x3 conv; the input added back; BatchNorm; ReLU) -> Conv2d(16, 32, 3, stride=2, padding=1) (PyTorch's
padding at stride 2 on an even size, which Keras's 'same' cannot express) -> BatchNorm2d -> ReLU
-> AdaptiveAvgPool2d(1) -> Flatten -> Linear(32, 10). Adam 1e-3, batch 32, 1 epoch on the 60,000
Fashion-MNIST training images, seed 42. torch.onnx.export (eval mode) folds each BatchNorm that
follows a Conv into that Conv's weights, as a PyTorch user's export does; the one after the Add
stays a BatchNormalization node.

Writes into OUT_DIR (default tests/onnx/data): torch_resnet.onnx and torch_resnet_outputs.bin
(PyTorch's logits on the 10,000 test images, float32 little-endian, 10,000 x 10).
  /usr/bin/python3 scripts/torch_resnet_onnx.py [--out DIR]
Needs Debian's python3-torch and python3-onnx (by hand only: the tests read the files).
"""
import argparse, gzip, os, struct
import numpy as np
import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--out", default=os.path.join(here, "..", "tests", "onnx", "data"))
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = ap.parse_args()


def idx(path):
    with gzip.open(path, "rb") as f:
        magic, = struct.unpack(">I", f.read(4))
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1))
        self.join = nn.BatchNorm2d(16)  # after the Add: no Conv to fold into, so ONNX keeps it
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.join(x + self.block(x)))
        return self.head(self.down(x))


torch.set_num_threads(2)
torch.manual_seed(42)
xtr = torch.from_numpy(idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
ytr = torch.from_numpy(idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
xte = torch.from_numpy(idx(f"{a.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
yte = torch.from_numpy(idx(f"{a.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
m = Net()
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
lossf = nn.CrossEntropyLoss()
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
path = os.path.join(a.out, "torch_resnet.onnx")
torch.onnx.export(m, xte[:1], path, opset_version=13, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
logits.numpy().astype("<f4").tofile(os.path.join(a.out, "torch_resnet_outputs.bin"))
import onnx
mo = onnx.load(path)
onnx.checker.check_model(mo)
print(f"pytorch {torch.__version__}: test accuracy {acc:.4f}; nodes: {[n.op_type for n in mo.graph.node]}; wrote {path}")
