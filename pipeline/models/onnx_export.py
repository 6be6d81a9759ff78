"""Export a model to ONNX: the file ONNX Runtime and OpenVINO run, and ``slimdet`` can import."""

import warnings
from pathlib import Path

import torch

from ..fsutil import atomic_write_via
from . import ModelSpec


def export_onnx(spec: ModelSpec, path, batch: int = 1, opset: int = 17, dynamic_batch: bool = False) -> Path:
    """An ONNX file with input ``images`` and one output per head map; static shapes, or with
    ``dynamic_batch`` a symbolic batch dimension."""
    with torch.no_grad():
        n_out = len(spec.module(spec.example_input(batch)))
    outputs = [f"head{i}" for i in range(n_out)]
    dynamic_axes = {name: {0: "batch"} for name in ["images", *outputs]} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return atomic_write_via(path, lambda tmp: torch.onnx.export(
            spec.module.eval(), (spec.example_input(batch),), tmp, dynamo=False, opset_version=opset,
            input_names=["images"], output_names=outputs, dynamic_axes=dynamic_axes))
