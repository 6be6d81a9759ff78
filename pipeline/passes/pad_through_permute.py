"""Rewrite ``permute_dims(pad(permute_dims(x, a)), b)``, where ``b`` undoes ``a``, into ``pad(x)``.

Relax's ConvertLayout has no layout rule for ``nn.pad``: in an int8 graph converted to NHWC,
every zero-point pad in front of a conv (``integer_conv2d`` pads with the input's zero point)
is wrapped in a transpose to NCHW and one back. Each wrapped pad became a tuning task of its own
(yolov8-digits pruned int8: 30 of its 120 tasks) and two extra passes over the activation at
run time. Padding the same amounts along the permuted axes gives the same tensor with no
transposes.
"""

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, rewrite_call, wildcard

from .rewrite import rewrite_functions


def _axes(call) -> list[int]:
    return [int(a) for a in call.attrs.axes]


def _pad_on_source(data, inner, pad, outer):
    """``pad`` applied to ``data`` itself, or None when the outer permutation does not undo the inner."""
    first, second = _axes(inner), _axes(outer)
    if len(first) != len(second) or any(first[second[j]] != j for j in range(len(second))):
        return None
    widths = [int(w) for w in pad.attrs.pad_width]
    source_widths = [0] * len(widths)
    for position, axis in enumerate(first):  # the inner permute put data's ``axis`` at ``position``
        source_widths[2 * axis:2 * axis + 2] = widths[2 * position:2 * position + 2]
    return relax.op.nn.pad(data, source_widths, pad.attrs.pad_mode, float(pad.attrs.pad_value))


def _rewrite(func):
    data = wildcard()
    inner = is_op("relax.permute_dims")(data)
    pad = is_op("relax.nn.pad")(inner)
    outer = is_op("relax.permute_dims")(pad)

    def rewriter(matched, matchings):
        lowered = _pad_on_source(matchings[data], matchings[inner], matchings[pad], matchings[outer])
        return matched if lowered is None else lowered

    return rewrite_call(outer, rewriter, func)


@tvm.transform.module_pass(opt_level=0, name="PadThroughPermute")
def pad_through_permute(mod, _ctx):
    return rewrite_functions(mod, _rewrite)
