#!/usr/bin/env python3
"""Certifies chosen test digits of the embedded MNIST-10k with ../shared/reference/certify_reference.py
(an independent CERTIFY written from Cohen et al.'s pseudocode) on given safetensors weights, and
prints one JSON line per image: {"idx", "label", "predict", "radius"}. A test instrument only: the
product never calls Python.

  python3 certify_crosscheck.py --weights W --indices 0,20,40 --sigma 0.25 --n 10000
"""
import argparse
import json
import os
import sys

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default=os.path.join(os.path.dirname(__file__), "../../../shared/reference"))
    p.add_argument("--weights", required=True)
    p.add_argument("--test", default=os.path.join(os.path.dirname(__file__), "../../data/mnist10k-test.npz"))
    p.add_argument("--model", default="cnn4")
    p.add_argument("--indices", required=True)
    p.add_argument("--sigma", type=float, required=True)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    sys.path.insert(0, os.path.abspath(args.reference))
    from certify_reference import certify
    from pgd_train_reference import build
    from safetensors.torch import load_file

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = np.load(args.test)
    images = torch.from_numpy(data["image"]).permute(0, 3, 1, 2).float() / 255.0
    labels = data["label"].astype(int)
    c, h, w = images.shape[1:]
    model = build(args.model, c, h, w, 10).eval()
    model.load_state_dict(load_file(args.weights))
    for idx in (int(i) for i in args.indices.split(",")):
        top, radius = certify(model, images[idx], args.n0, args.n, args.alpha, args.sigma, args.batch, 10)
        print(json.dumps({"idx": idx, "label": int(labels[idx]), "predict": top, "radius": float(radius)}))


if __name__ == "__main__":
    main()
