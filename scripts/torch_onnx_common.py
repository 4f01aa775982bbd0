"""What scripts/torch_{seed,resnet,lstm}_onnx.py share: Fashion-MNIST as PyTorch tensors, the
training loop (Adam 1e-3, batch 32, cross-entropy, one permutation per epoch, torch.manual_seed(42)
before the model is made), and the export (torch.onnx.export with a dynamic batch axis, PyTorch's
test logits as float32 little-endian, onnx.checker). Needs Debian's python3-torch and python3-onnx.
PyTorch's CPU training is not the same bits from run to run here when the machine's load differs
(torch_resnet_onnx.py gave 0.8052, the committed files, then 0.7950 twice, once before and once
after these scripts shared this module, bit-equal to each other): the files in tests/onnx/data are
one run's, and the tests compare ctnn with that run's own outputs."""
import argparse, gzip, os, struct
import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"


def args(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "onnx", "data"))
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--epochs", type=int, default=1)
    if extra:
        extra(ap)
    return ap.parse_args()


def idx(path):
    with gzip.open(path, "rb") as f:
        magic, = struct.unpack(">I", f.read(4))
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def fashion_mnist(data, channel_axis=True):
    """(train images, train labels, test images, test labels): images byte / 255, [N, 1, 28, 28]
    with channel_axis, else [N, 28, 28] (28 rows of 28 pixels, a sequence)."""
    def images(name):
        x = torch.from_numpy(idx(f"{data}/{name}-images-idx3-ubyte.gz").astype(np.float32) / 255)
        return x.unsqueeze(1) if channel_axis else x
    labels = lambda name: torch.from_numpy(idx(f"{data}/{name}-labels-idx1-ubyte.gz").astype(np.int64))
    return images("train"), labels("train"), images("t10k"), labels("t10k")


def train(make_model, xtr, ytr, epochs):
    """torch.manual_seed(42), then the model, then `epochs` epochs; returns it in eval mode."""
    torch.set_num_threads(2)
    torch.manual_seed(42)
    m = make_model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(xtr.shape[0])
        m.train()
        for i in range(0, xtr.shape[0], 32):
            b = perm[i:i + 32]
            opt.zero_grad(set_to_none=True)
            lossf(m(xtr[b]), ytr[b]).backward()
            opt.step()
    m.eval()
    return m


def export(m, xte, yte, out, name, opset, input_name):
    """Writes OUT/NAME.onnx and OUT/NAME_outputs.bin (the logits on the 10,000 test images),
    checks the file with onnx.checker, and prints the test accuracy and the ONNX operators."""
    with torch.inference_mode():
        logits = torch.cat([m(xte[i:i + 1000]) for i in range(0, 10000, 1000)])
    acc = (logits.argmax(1) == yte).float().mean().item()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.onnx")
    torch.onnx.export(m, xte[:1], path, opset_version=opset, input_names=[input_name], output_names=["logits"],
                      dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}})
    logits.numpy().astype("<f4").tofile(os.path.join(out, f"{name}_outputs.bin"))
    import onnx
    mo = onnx.load(path)
    onnx.checker.check_model(mo)
    print(f"pytorch {torch.__version__}: test accuracy {acc:.4f}; operators {[n.op_type for n in mo.graph.node]}; "
          f"wrote {path}")
