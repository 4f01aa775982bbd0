#!/usr/bin/python3
"""Writes tests/layers/data/{lstm,gru,rnn}_torch_reference.txt: small recurrent layers computed by
PyTorch (nn.LSTM, nn.GRU, nn.RNN), for the tests that ctnn's LSTM, GRU and SimpleRNN (Keras's
layout) compute the same functions.

Weights are drawn in Keras's layout (kernel [F x G], recurrent_kernel [U x G], bias; LSTM gates
i, f, c, o; GRU gates z, r, h with an input and a recurrent bias, reset_after) and handed to
PyTorch: weight_ih = kernel^T, weight_hh = recurrent_kernel^T (for the GRU with the z and r blocks
swapped: PyTorch's order is r, z, n), bias_ih = the (input) bias, bias_hh = the recurrent bias or 0.
Each file holds, one line each as whitespace-separated numbers:
  steps features units batch
  the parameters in ctnn's (Keras's) order, x [batch][steps][features], h [batch][steps][units]
Needs Debian's python3-torch; run with /usr/bin/python3 from the repository root.
"""
import numpy as np
import torch

STEPS, FEATURES, UNITS, BATCH = 5, 3, 7, 2
U = UNITS
rng = np.random.default_rng(20261203)


def write(name, params, x, h):
    path = f"tests/layers/data/{name}_torch_reference.txt"
    with open(path, "w") as f:
        f.write(f"{STEPS} {FEATURES} {UNITS} {BATCH}\n")
        f.write(" ".join(repr(float(v)) for p in params for v in p.ravel()) + "\n")
        for a in (x, h):
            f.write(" ".join(repr(float(v)) for v in a.ravel()) + "\n")
    print("wrote", path, h.shape)


def swap_zr(m):  # Keras z, r, h -> PyTorch r, z, n along the last axis
    return np.concatenate([m[..., U:2 * U], m[..., :U], m[..., 2 * U:]], axis=-1)


x = rng.uniform(-2, 2, (BATCH, STEPS, FEATURES))
t = lambda a: torch.from_numpy(np.ascontiguousarray(a))

# LSTM
k = rng.uniform(-0.8, 0.8, (FEATURES, 4 * U))
r = rng.uniform(-0.6, 0.6, (U, 4 * U))
b = rng.uniform(-0.5, 0.5, (4 * U,))
m = torch.nn.LSTM(FEATURES, U, batch_first=True).double()
with torch.no_grad():
    m.weight_ih_l0.copy_(t(k.T)); m.weight_hh_l0.copy_(t(r.T))
    m.bias_ih_l0.copy_(t(b)); m.bias_hh_l0.zero_()
    h, _ = m(t(x))
write("lstm", (k, r, b), x, h.numpy())

# GRU (reset_after)
k = rng.uniform(-0.8, 0.8, (FEATURES, 3 * U))
r = rng.uniform(-0.6, 0.6, (U, 3 * U))
b = rng.uniform(-0.5, 0.5, (2, 3 * U))
m = torch.nn.GRU(FEATURES, U, batch_first=True).double()
with torch.no_grad():
    m.weight_ih_l0.copy_(t(swap_zr(k).T)); m.weight_hh_l0.copy_(t(swap_zr(r).T))
    m.bias_ih_l0.copy_(t(swap_zr(b[0]))); m.bias_hh_l0.copy_(t(swap_zr(b[1])))
    h, _ = m(t(x))
write("gru", (k, r, b), x, h.numpy())

# SimpleRNN
k = rng.uniform(-0.8, 0.8, (FEATURES, U))
r = rng.uniform(-0.6, 0.6, (U, U))
b = rng.uniform(-0.5, 0.5, (U,))
m = torch.nn.RNN(FEATURES, U, batch_first=True).double()
with torch.no_grad():
    m.weight_ih_l0.copy_(t(k.T)); m.weight_hh_l0.copy_(t(r.T))
    m.bias_ih_l0.copy_(t(b)); m.bias_hh_l0.zero_()
    h, _ = m(t(x))
write("rnn", (k, r, b), x, h.numpy())

# Bidirectional LSTM (Keras's Bidirectional(LSTM, merge_mode="concat")): the forward layer's
# weights, then the backward layer's; PyTorch's output at step t is [forward h_t, backward h_t].
params = []
m = torch.nn.LSTM(FEATURES, U, batch_first=True, bidirectional=True).double()
with torch.no_grad():
    for suffix in ("", "_reverse"):
        k = rng.uniform(-0.8, 0.8, (FEATURES, 4 * U))
        r = rng.uniform(-0.6, 0.6, (U, 4 * U))
        b = rng.uniform(-0.5, 0.5, (4 * U,))
        getattr(m, "weight_ih_l0" + suffix).copy_(t(k.T))
        getattr(m, "weight_hh_l0" + suffix).copy_(t(r.T))
        getattr(m, "bias_ih_l0" + suffix).copy_(t(b))
        getattr(m, "bias_hh_l0" + suffix).zero_()
        params += [k, r, b]
    h, _ = m(t(x))
write("bilstm", params, x, h.numpy())
