#!/usr/bin/env python3
"""PyTorch side of the interop test (tests/interop.rs); a test instrument, never called by the
product. Needs only torch (the venv of scripts/ensure-libtorch.sh); safetensors files are read and
written by hand (an 8-byte little-endian header length, a JSON header, raw little-endian data).

  pytorch_side.py logits MODEL WEIGHTS INPUT OUT   logits of MODEL with WEIGHTS on INPUT -> OUT
  pytorch_side.py init MODEL SEED WEIGHTS          a freshly initialised MODEL (torch.manual_seed)
                                                   saved as WEIGHTS, state_dict keys as-is
  pytorch_side.py gradients MODEL WEIGHTS INPUT OUT
      in float64, train mode (batch statistics), mean cross-entropy against labels i mod 10 for
      row i: the gradient with respect to the input (`input`) and to every parameter
      (`grad/<name>`), written as float64
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


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3), nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(conv(cin, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = 4 * planes
        self.conv1, self.bn1 = conv(cin, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv(planes, cout, 1), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, blocks, c, k):
        super().__init__()
        self.conv1, self.bn1 = conv(c, 64, 3), nn.BatchNorm2d(64)
        stages, cin = [], 64
        for (planes, stride), n in zip([(64, 1), (128, 2), (256, 2), (512, 2)], blocks):
            layers = []
            for i in range(n):
                layers.append(block(cin, planes, stride if i == 0 else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(cin, k)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv(cin, cout, 3, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv(cout, cout, 3)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride))

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        return self.conv2(torch.relu(self.bn2(out))) + skip


class PreActResNet18(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = conv(c, 64, 3)
        stages, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            stages.append(nn.Sequential(PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, k)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        out = torch.relu(self.bn(out))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.act = act
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv(cin, cout, 3, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv(cout, cout, 3)
        self.equal = cin == cout
        if not self.equal:
            self.convShortcut = conv(cin, cout, 1, stride)

    def forward(self, x):
        a = self.act(self.bn1(x))
        skip = x if self.equal else self.convShortcut(a)
        return self.conv2(self.act(self.bn2(self.conv1(a)))) + skip


class WideGroup(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, width, act, c, k):
        super().__init__()
        self.act, n = act, (depth - 4) // 6
        self.conv1 = conv(c, 16, 3)
        groups, cin = [], 16
        for cout, stride in [(16 * width, 1), (32 * width, 2), (64 * width, 2)]:
            layers = []
            for i in range(n):
                layers.append(WideBlock(cin, cout, stride if i == 0 else 1, act))
                cin = cout
            groups.append(WideGroup(layers))
        self.block1, self.block2, self.block3 = groups
        self.bn1 = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, k)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.act(self.bn1(out))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def build(name):
    if name == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], 3, 10)
    if name == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], 3, 10)
    if name == "preact-resnet18":
        return PreActResNet18(3, 10)
    if name.startswith("wrn-"):
        parts = name.split("-")
        act = nn.functional.silu if parts[-1] == "swish" else torch.relu
        return WideResNet(int(parts[1]), int(parts[2]), act, 3, 10)
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
        t = t.detach().contiguous()
        t = t if t.dtype == torch.float64 else t.to(torch.float32)
        raw = bytes(t.flatten().view(torch.uint8).tolist())
        header[key] = {"dtype": "F64" if t.dtype == torch.float64 else "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
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
    elif mode == "gradients":
        model.load_state_dict(read_safetensors(sys.argv[3]))
        model.double().train()
        x = read_safetensors(sys.argv[4])["input"].to(torch.float64).requires_grad_(True)
        y = torch.arange(x.shape[0]) % 10
        nn.functional.cross_entropy(model(x), y).backward()
        grads = {"input": x.grad}
        grads.update({f"grad/{k}": p.grad for k, p in model.named_parameters()})
        write_safetensors(sys.argv[5], grads)
    elif mode == "init":
        torch.manual_seed(int(sys.argv[3]))
        write_safetensors(sys.argv[4], build(name).state_dict())
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
