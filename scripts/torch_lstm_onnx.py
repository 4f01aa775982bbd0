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
The data and the training loop are scripts/torch_onnx_common.py's.
Needs Debian's python3-torch and python3-onnx (by hand only: the tests read the files).
"""
import torch.nn as nn
import torch_onnx_common as common


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


a = common.args()
xtr, ytr, xte, yte = common.fashion_mnist(a.data, channel_axis=False)
m = common.train(Net, xtr, ytr, a.epochs)
common.export(m, xte, yte, a.out, "torch_lstm", 14, "rows")
