#!/usr/bin/env python3
"""Cross-check instrument for docs/attacks.md (never called by the product): robust accuracy of
a CNN-4 safetensors file on the first N MNIST-10k test digits under torchattacks' PGD, APGD-CE,
APGD-T, FAB-T, Square and AutoAttack (standard, as published: 100 iterations; and torchattacks'
own AutoAttack class, whose attacks default to 10 iterations), each on its own, as JSON.

  torchattacks_crosscheck.py WEIGHTS N EPS [--only NAME,NAME…]

Needs torch 2.11 and torchattacks 3.5.1 (scripts/reference/attack-venv.sh makes that venv).
"""
import json
import os
import sys
import time
import zipfile

import numpy as np
import torch
import torchattacks

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
import pytorch_side  # noqa: E402  (the CNN-4 module and the safetensors reader)


def mnist10k_test(n):
    with zipfile.ZipFile(os.path.join(ROOT, "data", "mnist10k-test.npz")) as z:
        image = np.load(z.open("image.npy"))
        label = np.load(z.open("label.npy"))
    x = torch.from_numpy(image[:n]).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.from_numpy(label[:n].astype(np.int64))


def robust_accuracy(attack, model, x, y, batch=250):
    correct = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        adv = attack(xb, yb)
        with torch.no_grad():
            correct += (model(adv).argmax(1) == yb).sum().item()
    return correct / len(x)


def main():
    weights, n, eps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(2)
    model = pytorch_side.build("cnn4").eval()
    model.load_state_dict(pytorch_side.read_safetensors(weights))
    x, y = mnist10k_test(n)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    attacks = {
        "pgd-20": torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=20, random_start=True),
        "apgd-ce": torchattacks.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", seed=0),
        "apgd-t": torchattacks.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1, n_classes=10, seed=0),
        "fab-t": torchattacks.FAB(model, norm="Linf", eps=eps, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, seed=0),
        "square": torchattacks.Square(model, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8, seed=0),
        # AutoAttack "standard" as published (Croce & Hein 2020): 100 iterations of APGD-CE, APGD-T
        # and FAB-T, Square with 5,000 queries, each on the points still robust. torchattacks'
        # own AutoAttack class builds the same chain with its attacks' default of 10 iterations,
        # kept below as "autoattack-10it" for reference.
        "autoattack": torchattacks.MultiAttack([
            torchattacks.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", seed=0),
            torchattacks.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1, n_classes=10, seed=0),
            torchattacks.FAB(model, norm="Linf", eps=eps, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, seed=0),
            torchattacks.Square(model, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, seed=0),
        ]),
        "autoattack-10it": torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0),
    }
    if "--only" in sys.argv:
        keep = sys.argv[sys.argv.index("--only") + 1].split(",")
        attacks = {k: v for k, v in attacks.items() if k in keep}
    out = {"clean": clean, "n": n, "eps": eps, "torch": torch.__version__, "torchattacks": torchattacks.__version__}
    for name, attack in attacks.items():
        start = time.perf_counter()
        out[name] = robust_accuracy(attack, model, x, y)
        out[name + "_seconds"] = time.perf_counter() - start
        print(name, out[name], file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
