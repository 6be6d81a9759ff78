"""Structured channel pruning over a dependency graph.

Torch-Pruning's DepGraph finds every layer coupled to a channel (the convs feeding a concat,
both sides of a residual add, the BatchNorm after a conv) and removes whole channels from all
of them at once, so the result is a smaller dense network, not a masked one. Widths are kept at
multiples of ``round_to``: a conv with 11 or 179 channels defeats vectorisation and int8 packing,
and pruned models are known to get slower than the original without rounding.

The convs that produce the detector's outputs are never pruned: their channels are the head's
contract with the decoder (anchors x (5 + classes), or DFL bins + classes).
"""

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ..errors import InputError

IMPORTANCE = {
    # L2 norm of each output channel's weights (with its coupled layers): data-free, the usual default.
    "l2": lambda tp: tp.importance.MagnitudeImportance(p=2),
    # |gamma| of the BatchNorm after each conv (network slimming): how much the channel is scaled up.
    "bn": lambda tp: tp.importance.BNScaleImportance(),
}


@dataclass
class PruneReport:
    ratio: float  # fraction of channels removed from each prunable layer (before rounding)
    round_to: int
    importance: str
    params: int
    macs: int
    base_params: int
    base_macs: int

    @property
    def macs_kept(self) -> float:
        return self.macs / self.base_macs

    def as_dict(self) -> dict:
        return {**asdict(self), "macs_kept": round(self.macs_kept, 4),
                "params_kept": round(self.params / self.base_params, 4)}


def count(module: nn.Module, example: torch.Tensor) -> tuple:
    """(MACs, parameters) of one forward pass on ``example``."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(module, example)
    return int(macs), int(params)


def output_convs(module: nn.Module, example: torch.Tensor) -> list:
    """The convs whose results reach the outputs through shape-only ops (concat, view): found
    by walking the autograd graph back from the outputs to the first convolution on each path."""
    produced = {}

    def remember(conv, _inputs, output):
        produced[output.grad_fn] = conv

    hooks = [m.register_forward_hook(remember) for m in module.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.enable_grad():
            outputs = module(example.clone().requires_grad_(True))
    finally:
        for hook in hooks:
            hook.remove()
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    found, seen = [], set()
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in produced:
            found.append(produced[node])
            continue
        stack.extend(parent for parent, _ in node.next_functions)
    return found


def prune(module: nn.Module, example: torch.Tensor, ratio: float, round_to: int = 16,
          importance: str = "l2") -> PruneReport:
    """Remove ``ratio`` of the channels of every prunable layer of ``module`` (in place)."""
    import torch_pruning as tp

    if not 0.0 <= ratio < 1.0:
        raise InputError(f"pruning ratio must be in [0, 1), got {ratio}")
    if importance not in IMPORTANCE:
        raise InputError(f"unknown importance {importance!r}; known: {', '.join(IMPORTANCE)}")
    module.eval()
    base_macs, base_params = count(module, example)
    if ratio > 0:
        kept = output_convs(module, example)
        pruner = tp.pruner.MetaPruner(module, example, importance=IMPORTANCE[importance](tp), pruning_ratio=ratio,
                                      pruning_ratio_dict=nearest_width_ratios(module, ratio, round_to, kept),
                                      ignored_layers=kept, round_to=round_to)
        pruner.step()
    macs, params = count(module, example)
    return PruneReport(ratio=ratio, round_to=round_to, importance=importance, params=params, macs=macs,
                       base_params=base_params, base_macs=base_macs)


def nearest_width_ratios(module: nn.Module, ratio: float, round_to: int, ignored: list) -> dict:
    """Per conv, the ratio that leaves it the multiple of ``round_to`` nearest ``width * (1 - ratio)``
    (at least one). Torch-Pruning rounds kept widths down, so at any ratio it halved yolov3-tiny's
    32-channel conv and cut its 64-channel one by a quarter: pruned by 6% a channel, the network
    lost 26% of its MACs and every detection (fidelity 0.000)."""
    ratios = {}
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and conv not in ignored:
            width = conv.out_channels
            kept = min(width, max(round_to, round_to * round(width * (1 - ratio) / round_to)))
            # Torch-Pruning keeps int(width * (1 - r)) channels, then rounds that down: aim half a channel above
            ratios[conv] = 0.0 if kept == width else 1 - (kept + 0.5) / width
    return ratios


def ratio_for_macs(module: nn.Module, example: torch.Tensor, macs_kept: float, round_to: int = 16,
                   importance: str = "l2", steps: int = 12) -> float:
    """The channel ratio whose pruned copy of ``module`` keeps about ``macs_kept`` of its MACs.
    Rounding widths makes MACs a step function of the ratio: bisect for the step, then take
    whichever side of it lands closer to the goal."""
    if not 0.0 < macs_kept <= 1.0:
        raise InputError(f"the fraction of MACs to keep must be in (0, 1], got {macs_kept}")

    def kept(ratio):
        return prune(copy.deepcopy(module), example, ratio, round_to, importance).macs_kept

    low, high = (0.0, 1.0), (0.95, kept(0.95))  # (ratio, MACs kept): above and at-or-below the goal
    for _ in range(steps):
        mid = (low[0] + high[0]) / 2
        point = (mid, kept(mid))
        low, high = (point, high) if point[1] > macs_kept else (low, point)
    return min(low, high, key=lambda p: abs(p[1] - macs_kept))[0]


def resize_to_state(module: nn.Module, state: dict) -> nn.Module:
    """Give ``module``'s convs and BatchNorms the channel counts of a pruned ``state`` dict, so
    the pruned network can be rebuilt from its architecture plus its weights alone."""
    for name, layer in module.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(layer, nn.Conv2d) and f"{prefix}weight" in state:
            if layer.groups != 1:
                raise InputError(f"{name}: resizing grouped convs is not supported")
            out_c, in_c = state[f"{prefix}weight"].shape[:2]
            layer.in_channels, layer.out_channels = int(in_c), int(out_c)
            layer.weight = nn.Parameter(torch.empty(state[f"{prefix}weight"].shape))
            if layer.bias is not None:
                layer.bias = nn.Parameter(torch.empty(int(out_c)))
        elif isinstance(layer, nn.BatchNorm2d) and f"{prefix}weight" in state:
            n = int(state[f"{prefix}weight"].shape[0])
            layer.num_features = n
            layer.weight, layer.bias = nn.Parameter(torch.empty(n)), nn.Parameter(torch.empty(n))
            layer.register_buffer("running_mean", torch.zeros(n))
            layer.register_buffer("running_var", torch.ones(n))
    return module


def prune_unstructured(module: nn.Module, example: torch.Tensor, amount: float) -> float:
    """Zero the ``amount`` smallest-magnitude conv weights across the network (global L1,
    ``torch.nn.utils.prune``), output convs spared; returns the sparsity of the conv weights.
    Shapes do not change, so dense kernels (TVM's, oneDNN's, MLAS's) run exactly as many MACs:
    this is reported as sparsity, never as a speed-up."""
    from torch.nn.utils import prune as torch_prune

    if not 0.0 <= amount < 1.0:
        raise InputError(f"unstructured amount must be in [0, 1), got {amount}")
    keep = set(output_convs(module, example))
    targets = [(m, "weight") for m in module.modules() if isinstance(m, nn.Conv2d) and m not in keep]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=amount)
    for m, name in targets:
        torch_prune.remove(m, name)
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Conv2d)]
    return float(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights))
