"""Stage 3, import: a PyTorch module or an ONNX file -> a Relax IRModule with one ``main``."""

from .onnx_import import import_onnx
from .torch_import import import_torch

__all__ = ["import_onnx", "import_torch"]
