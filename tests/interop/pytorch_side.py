#!/usr/bin/env python3
"""PyTorch side of the interop test (tests/interop.rs); a test instrument, never called by the
product. Needs only torch (the venv of scripts/ensure-libtorch.sh); safetensors files are read and
written by hand (an 8-byte little-endian header length, a JSON header, raw little-endian data).

  pytorch_side.py logits MODEL WEIGHTS INPUT OUT   logits of MODEL with WEIGHTS on INPUT -> OUT
  pytorch_side.py init MODEL SEED WEIGHTS          a freshly initialised MODEL (torch.manual_seed)
                                                   saved as WEIGHTS, state_dict keys as-is
"""
import json
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def cnn(blocks, c, h, w, k):
    layers = []
    for cin, cout, pool in blocks:
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
    last = blocks[-1][1]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(last * (h // 4) * (w // 4), k))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, k)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def build(name):
    if name == "resnet18":
        return ResNet18(3, 10)
    c, h, w, k = 1, 28, 28, 10
    if name == "cnn2":
        return cnn([(c, 16, True), (16, 32, True)], c, h, w, k)
    if name == "cnn4":
        return cnn([(c, 16, False), (16, 16, True), (16, 32, False), (32, 32, True)], c, h, w, k)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, k))
    raise SystemExit(f"unknown model {name}")


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        buf = bytearray(data[8 + n + start:8 + n + end])
        out[key] = torch.frombuffer(buf, dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        t = t.detach().contiguous().to(torch.float32)
        raw = bytes(t.flatten().view(torch.uint8).tolist())
        header[key] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    mode, name = sys.argv[1], sys.argv[2]
    model = build(name).eval()
    if mode == "logits":
        model.load_state_dict(read_safetensors(sys.argv[3]))
        x = read_safetensors(sys.argv[4])["input"].to(torch.float32)
        with torch.no_grad():
            write_safetensors(sys.argv[5], {"logits": model(x)})
    elif mode == "init":
        torch.manual_seed(int(sys.argv[3]))
        write_safetensors(sys.argv[4], build(name).state_dict())
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
