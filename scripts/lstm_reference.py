#!/usr/bin/python3
"""Writes tests/layers/data/lstm_torch_reference.txt: a small LSTM computed by PyTorch's nn.LSTM, for the
test that ctnn::LSTM (Keras's layout) computes the same function.

Weights are drawn in Keras's layout (kernel [F x 4U], recurrent_kernel [U x 4U], bias [4U], gates
i, f, c, o) and handed to PyTorch as weight_ih = kernel^T, weight_hh = recurrent_kernel^T,
bias_ih = bias, bias_hh = 0. The file holds, one line each as whitespace-separated numbers:
  steps features units batch
  kernel, recurrent_kernel, bias, x [batch][steps][features], h [batch][steps][units]
Needs Debian's python3-torch; run with /usr/bin/python3 from the repository root.
"""
import numpy as np
import torch

STEPS, FEATURES, UNITS, BATCH = 5, 3, 7, 2
rng = np.random.default_rng(20261203)
kernel = rng.uniform(-0.8, 0.8, (FEATURES, 4 * UNITS)).astype(np.float64)
recurrent = rng.uniform(-0.6, 0.6, (UNITS, 4 * UNITS)).astype(np.float64)
bias = rng.uniform(-0.5, 0.5, (4 * UNITS,)).astype(np.float64)
x = rng.uniform(-2, 2, (BATCH, STEPS, FEATURES)).astype(np.float64)

lstm = torch.nn.LSTM(FEATURES, UNITS, batch_first=True).double()
with torch.no_grad():
    lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
    lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T))
    lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
    lstm.bias_hh_l0.zero_()
    h, _ = lstm(torch.from_numpy(x))
h = h.numpy()

with open("tests/layers/data/lstm_torch_reference.txt", "w") as f:
    f.write(f"{STEPS} {FEATURES} {UNITS} {BATCH}\n")
    for a in (kernel, recurrent, bias, x, h):
        f.write(" ".join(repr(float(v)) for v in a.ravel()) + "\n")
print("wrote tests/layers/data/lstm_torch_reference.txt", h.shape)
