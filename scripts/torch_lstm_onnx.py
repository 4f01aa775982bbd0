#!/usr/bin/python3
"""Trains an LSTM classifier in PyTorch and exports it to ONNX, for ctnn's import test
(tests/onnx/test_onnx_torch_models.cpp).

The model reads a Fashion-MNIST image as 28 rows of 28 pixels: nn.LSTM(28, 64, batch_first=True)
-> the last step's output (out[:, -1]) -> Linear(64, 10). Adam 1e-3, batch 32, 1 epoch on the
60,000 training images, seed 42. torch.onnx.export writes the LSTM time-major between two
Transposes, its zero initial states computed from the batch size (Shape, Gather, Unsqueeze,
Concat, ConstantOfShape), and the last step as a Gather; ctnn-onnx maps all of it to
ctnn::LSTM<64> -> ctnn::Dense<10>.

Writes into OUT_DIR (default tests/onnx/data): torch_lstm.onnx and torch_lstm_outputs.bin
(PyTorch's logits on the 10,000 test images, float32 little-endian, 10,000 x 10).
  /usr/bin/python3 scripts/torch_lstm_onnx.py [--out DIR]
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
        self.lstm = nn.LSTM(28, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


torch.set_num_threads(2)
torch.manual_seed(42)
xtr = torch.from_numpy(idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float32) / 255)
ytr = torch.from_numpy(idx(f"{a.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
xte = torch.from_numpy(idx(f"{a.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255)
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
path = os.path.join(a.out, "torch_lstm.onnx")
torch.onnx.export(m, xte[:1], path, opset_version=14, input_names=["rows"], output_names=["logits"],
                  dynamic_axes={"rows": {0: "batch"}, "logits": {0: "batch"}})
logits.numpy().astype("<f4").tofile(os.path.join(a.out, "torch_lstm_outputs.bin"))
import onnx
mo = onnx.load(path)
onnx.checker.check_model(mo)
print(f"pytorch {torch.__version__}: test accuracy {acc:.4f}; nodes: {[n.op_type for n in mo.graph.node]}; wrote {path}")
