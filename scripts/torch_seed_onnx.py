#!/usr/bin/python3
"""Trains the seed model in PyTorch and exports it to ONNX, for ctnn's import test.

Writes, into OUT_DIR (default tests/onnx/data): torch_seed_cnn.onnx (opset 13, batch axis
dynamic) and torch_seed_cnn_outputs.bin (PyTorch's logits on the 10,000 Fashion-MNIST test
images, float32 little-endian, 10,000 x 10), and prints PyTorch's test accuracy. The model is
../shared/peers/torch_seed_cnn.py's model(): Conv2d(1, 32, 3) -> ReLU -> Flatten ->
Linear(21632, 128) -> ReLU -> Linear(128, 10); the training is scripts/torch_onnx_common.py's
(Adam 1e-3, batch 32, cross-entropy, seed 42), the peer's recipe. tests/onnx/test_onnx_import.cpp
loads the file into ctnn and compares the 10,000 predictions. By hand only (the tests read the
files this writes, not PyTorch):

  /usr/bin/python3 scripts/torch_seed_onnx.py [--epochs 1] [--peers ../shared/peers] [--out DIR]
"""
import importlib.util, os
import torch_onnx_common as common

a = common.args(lambda ap: ap.add_argument("--peers", default=os.path.join(common.HERE, "..", "..", "shared", "peers")))
spec = importlib.util.spec_from_file_location("torch_seed_cnn", os.path.join(a.peers, "torch_seed_cnn.py"))
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
xtr, ytr, xte, yte = common.fashion_mnist(a.data)
m = common.train(peer.model, xtr, ytr, a.epochs)
common.export(m, xte, yte, a.out, "torch_seed_cnn", 13, "image")
