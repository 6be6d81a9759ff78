"""A Darknet ``.cfg`` + ``.weights`` reader that builds a plain ``torch.nn.Module``.

It covers the layer types the YOLOv3 family uses (convolutional, maxpool, upsample, route,
shortcut, yolo). The network returns the raw maps that feed each ``[yolo]`` layer: box
decoding stays outside the compiled graph (see ``pipeline.runtime.decode``).
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import AssetError


def parse_cfg(path) -> list:
    """Sections of a Darknet cfg as ``[{"type": name, key: value, ...}, ...]``."""
    sections = []
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise AssetError(f"{path}:{lineno}: malformed section header {raw!r}")
            sections.append({"type": line[1:-1].strip()})
        elif "=" in line:
            if not sections:
                raise AssetError(f"{path}:{lineno}: option outside any section")
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
        else:
            raise AssetError(f"{path}:{lineno}: cannot parse {raw!r}")
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise AssetError(f"{path}: a Darknet cfg starts with a [net] section")
    return sections


def _ints(value: str) -> list:
    return [int(v) for v in value.split(",") if v.strip()]


class ConvBlock(nn.Module):
    def __init__(self, c_in, opts):
        super().__init__()
        k, s = int(opts["size"]), int(opts.get("stride", 1))
        self.c_out = int(opts["filters"])
        self.bn = int(opts.get("batch_normalize", 0)) == 1
        pad = (k - 1) // 2 if int(opts.get("pad", 0)) else 0
        self.conv = nn.Conv2d(c_in, self.c_out, k, s, pad, bias=not self.bn)
        self.norm = nn.BatchNorm2d(self.c_out, eps=1e-5) if self.bn else nn.Identity()
        activation = opts.get("activation", "linear")
        if activation not in ("leaky", "linear"):
            raise AssetError(f"unsupported Darknet activation {activation!r}")
        self.leaky = activation == "leaky"

    def forward(self, x):
        x = self.norm(self.conv(x))
        return F.leaky_relu(x, 0.1) if self.leaky else x


class MaxPool(nn.Module):
    """Darknet max-pool; the size-2 stride-1 case pads right/bottom like Darknet does."""

    def __init__(self, size, stride):
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x):
        if self.stride == 1 and self.size == 2:
            # max over (x[i], x[i+1]) with the last row/column kept: pad 1 on each side, drop the first.
            return F.max_pool2d(x, 2, 1, padding=1)[:, :, 1:, 1:]
        return F.max_pool2d(x, self.size, self.stride)


class Upsample(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.stride, mode="nearest")


class DarknetYolo(nn.Module):
    """The network of a Darknet cfg. ``forward`` returns one raw map per ``[yolo]`` layer."""

    def __init__(self, cfg_path):
        super().__init__()
        sections = parse_cfg(cfg_path)
        net, self.blocks = sections[0], sections[1:]
        self.input_size = (int(net.get("height", 416)), int(net.get("width", 416)))
        channels, layers, self.yolo_layers = [], nn.ModuleList(), []
        c = int(net.get("channels", 3))
        for i, opts in enumerate(self.blocks):
            kind = opts["type"]
            if kind == "convolutional":
                layer = ConvBlock(c, opts)
                c = layer.c_out
            elif kind == "maxpool":
                layer = MaxPool(int(opts["size"]), int(opts["stride"]))
            elif kind == "upsample":
                layer = Upsample(int(opts["stride"]))
            elif kind == "route":
                refs = [r if r >= 0 else i + r for r in _ints(opts["layers"])]
                opts["_refs"] = refs
                c = sum(channels[r] for r in refs)
                layer = nn.Identity()
            elif kind == "shortcut":
                opts["_refs"] = [i + int(opts["from"])]
                layer = nn.Identity()
            elif kind == "yolo":
                mask = _ints(opts["mask"])
                anchors = _ints(opts["anchors"])
                pairs = [anchors[2 * m: 2 * m + 2] for m in mask]
                self.yolo_layers.append({"index": i, "anchors": pairs, "classes": int(opts["classes"])})
                layer = nn.Identity()
            else:
                raise AssetError(f"unsupported Darknet layer [{kind}] (block {i})")
            layers.append(layer)
            channels.append(c)
        self.layers = layers

    def forward(self, x):
        outputs, heads = [], []
        for opts, layer in zip(self.blocks, self.layers):
            kind = opts["type"]
            if kind == "route":
                x = torch.cat([outputs[r] for r in opts["_refs"]], 1)
            elif kind == "shortcut":
                x = x + outputs[opts["_refs"][0]]
            elif kind == "yolo":
                heads.append(x)
            else:
                x = layer(x)
            outputs.append(x)
        return tuple(heads)

    def load_weights(self, weights_path):
        """Read Darknet's binary weights: a header, then per conv (BN or bias) then kernel."""
        data = Path(weights_path).read_bytes()
        major, minor, _ = np.frombuffer(data, np.int32, 3)
        offset = 12 + (8 if major * 10 + minor >= 2 else 4)
        params = np.frombuffer(data, np.float32, offset=offset)
        pos = 0

        def take(tensor):
            nonlocal pos
            n = tensor.numel()
            if pos + n > params.size:
                raise AssetError(f"{weights_path}: file ends early; truncated or not for this cfg")
            tensor.data.copy_(torch.from_numpy(params[pos: pos + n].copy()).view_as(tensor))
            pos += n

        for layer in self.layers:
            if not isinstance(layer, ConvBlock):
                continue
            if layer.bn:
                bn = layer.norm
                for t in (bn.bias, bn.weight, bn.running_mean, bn.running_var):
                    take(t)
            else:
                take(layer.conv.bias)
            take(layer.conv.weight)
        if pos != params.size:
            raise AssetError(f"{weights_path}: {params.size - pos} weights left over; not for this cfg")
        return self
