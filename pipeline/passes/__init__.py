"""Relax passes of our own, one TIR lowering rule (``polynomial_exp``) and one pass over scheduled
TIR (``vectorize_concat_axis``), one per file, each with its own test."""

import tvm

from .integer_conv2d import integer_conv2d
from .integer_max_pool2d import integer_max_pool2d
from .per_tensor_qdq_as_arithmetic import per_tensor_qdq_as_arithmetic


def lower_int8(mod):
    """An imported Q/DQ module with its convolutions and max-pools computed in integers, and its
    activations' quantize/dequantize as arithmetic that fuses into the convs around it."""
    return tvm.transform.Sequential([integer_conv2d, integer_max_pool2d, per_tensor_qdq_as_arithmetic])(mod)
