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
The data and the training loop are scripts/torch_onnx_common.py's.
Needs Debian's python3-torch and python3-onnx (by hand only: the tests read the files).
"""
import torch
import torch.nn as nn
import torch_onnx_common as common


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


a = common.args()
xtr, ytr, xte, yte = common.fashion_mnist(a.data)
m = common.train(Net, xtr, ytr, a.epochs)
common.export(m, xte, yte, a.out, "torch_resnet", 13, "image")
