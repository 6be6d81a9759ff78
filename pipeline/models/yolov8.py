"""A YOLOv8-class detector: CSP backbone with C2f blocks, SPPF, PAN neck, decoupled anchor-free head.

Written for compression: C2f splits its input with two 1x1 convs instead of ``chunk`` so a
dependency-graph pruner sees two ordinary consumers, and the head returns raw maps
(``4 * reg_max`` box-distribution channels followed by class logits per level); DFL decoding
and NMS happen outside the compiled graph.
"""

import math

import torch
import torch.nn as nn


def make_divisible(x, divisor=8):
    return int(math.ceil(x / divisor) * divisor)


class Conv(nn.Module):
    """Conv2d + BatchNorm + SiLU."""

    def __init__(self, c_in, c_out, k=1, s=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut=True):
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with two convolutions; ``cv1a``/``cv1b`` replace ``cv1(x).chunk(2)``."""

    def __init__(self, c_in, c_out, n=1, shortcut=False):
        super().__init__()
        self.c = c_out // 2
        self.cv1a = Conv(c_in, self.c)
        self.cv1b = Conv(c_in, self.c)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))
        self.cv2 = Conv((2 + n) * self.c, c_out)

    def forward(self, x):
        y = [self.cv1a(x), self.cv1b(x)]
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c_in, c_out, k=5):
        super().__init__()
        c_hidden = c_in // 2
        self.cv1 = Conv(c_in, c_hidden)
        self.cv2 = Conv(c_hidden * 4, c_out)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat([x, y1, y2, self.pool(y2)], 1))


class DetectHead(nn.Module):
    """Decoupled head: a box branch (DFL bins) and a class branch per pyramid level."""

    def __init__(self, num_classes, channels, reg_max=16):
        super().__init__()
        self.reg_max = reg_max
        c_box = max(16, channels[0] // 4, reg_max * 4)
        c_cls = max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(
            nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1))
            for c in channels)
        self.cls = nn.ModuleList(
            nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, num_classes, 1))
            for c in channels)

    def init_bias(self, strides, image_size=640):
        # Standard YOLOv8 prior: box logits start at 1, class logits at a low prior per cell.
        for box, cls, stride in zip(self.box, self.cls, strides):
            nn.init.constant_(box[-1].bias, 1.0)
            nn.init.constant_(cls[-1].bias, math.log(5 / cls[-1].out_channels / (image_size / stride) ** 2))

    def forward(self, features):
        return tuple(torch.cat([box(x), cls(x)], 1) for x, box, cls in zip(features, self.box, self.cls))


class YOLOv8(nn.Module):
    STRIDES = (8, 16, 32)

    def __init__(self, num_classes=80, width=0.25, depth=0.33, max_channels=1024, reg_max=16):
        super().__init__()
        ch = [min(make_divisible(c * width), make_divisible(max_channels * width))
              for c in (64, 128, 256, 512, 1024)]
        n = [max(round(k * depth), 1) for k in (3, 6, 6, 3)]
        self.num_classes, self.reg_max = num_classes, reg_max
        self.stem = Conv(3, ch[0], 3, 2)
        self.stage1 = nn.Sequential(Conv(ch[0], ch[1], 3, 2), C2f(ch[1], ch[1], n[0], True))
        self.stage2 = nn.Sequential(Conv(ch[1], ch[2], 3, 2), C2f(ch[2], ch[2], n[1], True))
        self.stage3 = nn.Sequential(Conv(ch[2], ch[3], 3, 2), C2f(ch[3], ch[3], n[2], True))
        self.stage4 = nn.Sequential(Conv(ch[3], ch[4], 3, 2), C2f(ch[4], ch[4], n[3], True), SPPF(ch[4], ch[4]))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.top_down1 = C2f(ch[4] + ch[3], ch[3], n[3])
        self.top_down2 = C2f(ch[3] + ch[2], ch[2], n[3])
        self.down1 = Conv(ch[2], ch[2], 3, 2)
        self.bottom_up1 = C2f(ch[2] + ch[3], ch[3], n[3])
        self.down2 = Conv(ch[3], ch[3], 3, 2)
        self.bottom_up2 = C2f(ch[3] + ch[4], ch[4], n[3])
        self.head = DetectHead(num_classes, (ch[2], ch[3], ch[4]), reg_max)
        self.head.init_bias(self.STRIDES)

    def forward(self, x):
        p2 = self.stage2(self.stage1(self.stem(x)))
        p3 = self.stage3(p2)
        p4 = self.stage4(p3)
        t3 = self.top_down1(torch.cat([self.up(p4), p3], 1))
        n2 = self.top_down2(torch.cat([self.up(t3), p2], 1))
        n3 = self.bottom_up1(torch.cat([self.down1(n2), t3], 1))
        n4 = self.bottom_up2(torch.cat([self.down2(n3), p4], 1))
        return self.head((n2, n3, n4))
