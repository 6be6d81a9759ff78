"""Load an exported artifact and detect objects: TVM runtime + numpy + PIL, nothing else.

This module must stay importable on a board that has only the TVM runtime: no torch, no
``tvm.relax`` compiler, no MetaSchedule. ``tests/test_runtime.py`` holds it to that.
"""

from dataclasses import dataclass

import numpy as np

from ..cuda import check_gpu
from ..errors import ArtifactError, InputError
from ..targets import host_cpu_flags, host_isa
from .artifact import read_artifact
from .decode import decode, detect
from .preprocess import letterbox, load_image
from .threads import set_threads, size_tvm_thread_pool


@dataclass(frozen=True)
class Detection:
    box: tuple  # x1, y1, x2, y2 in original image pixels
    score: float
    class_id: int
    label: str


class Detector:
    """Letterbox, head maps from any engine, decode, class-aware NMS: the same path for every
    engine (compiled TVM, PyTorch, ONNX Runtime), so their detections and mAP are comparable.

    ``run`` maps a preprocessed NCHW float32 batch to the model's raw head maps (numpy)."""

    def __init__(self, run, input_size, preprocess, decoder, classes, conf_threshold=0.25, iou_threshold=0.45):
        self.run, self.input_size, self.preprocess_config = run, input_size, preprocess
        self.decoder, self.classes = decoder, classes
        self.conf_threshold, self.iou_threshold = conf_threshold, iou_threshold

    def preprocess(self, image):
        return letterbox(image, self.input_size, self.preprocess_config)

    def predict(self, image_or_path) -> list:
        """Detections for one image (a path or a PIL image), boxes in the image's pixels."""
        image = image_or_path if hasattr(image_or_path, "size") else load_image(image_or_path)
        x, box_map = self.preprocess(image)
        maps = [m[0] for m in self.run(x[None])]
        boxes, scores = decode(maps, self.input_size, self.decoder)
        xyxy, conf, cls = detect(boxes, scores, self.conf_threshold, self.iou_threshold)
        xyxy = box_map.to_image(xyxy, *image.size)
        return [Detection(tuple(float(v) for v in b), float(s), int(c), self.classes[c])
                for b, s, c in zip(xyxy, conf, cls)]


class Predictor(Detector):
    """A compiled library (``.so`` + metadata) as a Detector."""

    def __init__(self, artifact_path, conf_threshold=0.25, iou_threshold=0.45, threads=None):
        """``threads``: CPU threads per inference (default: every CPU this process may use)."""
        import tvm
        from tvm.runtime.vm import VirtualMachine

        self.artifact = read_artifact(artifact_path)
        meta = self.meta = self.artifact.metadata
        isa = meta.get("isa", "x86_64")
        if isa != host_isa():
            raise ArtifactError(f"{self.artifact.library.name} is {isa} code ({meta['target_preset']}); this host "
                                f"is {host_isa()}: copy the .so and .json to the device and run them there")
        missing = [f for f in meta.get("required_cpu_flags", []) if f not in host_cpu_flags()]
        if missing:
            raise ArtifactError(f"{self.artifact.library.name} was built for {meta['target_preset']}; "
                                f"this CPU lacks {', '.join(missing)}")
        device = meta.get("device", "cpu")
        if device == "cuda":
            check_gpu(meta["gpu_arch"], tvm, self.artifact.library.name)
        try:
            lib = tvm.runtime.load_module(str(self.artifact.library))
        except Exception as e:
            raise ArtifactError(f"cannot load {self.artifact.library}: {e}") from None
        self.device = tvm.device(device)
        self.vm = VirtualMachine(lib, self.device)
        self.input_shape = tuple(meta["input_shape"])
        self._tvm = tvm
        if threads:
            set_threads(tvm, threads)
        self.threads = threads or size_tvm_thread_pool()  # the pool is sized once, when pipeline is imported
        super().__init__(self.run_library, meta["input_size"], meta["preprocess"], meta["decoder"], meta["classes"],
                         conf_threshold, iou_threshold)

    def run_library(self, batch: np.ndarray) -> list:
        """Raw head maps (list of numpy arrays) for a preprocessed NCHW float32 batch."""
        if tuple(batch.shape) != self.input_shape or batch.dtype != np.float32:
            raise InputError(f"input must be float32 of shape {self.input_shape} (this library was compiled "
                             f"for it); got {batch.dtype} {tuple(batch.shape)}")
        out = self.vm["main"](self._tvm.runtime.tensor(batch, self.device))
        outs = out if not hasattr(out, "numpy") else [out]
        return [o.numpy() for o in outs]

    def predict(self, image_or_path) -> list:
        if self.input_shape[0] != 1:
            raise InputError(f"predict() takes one image; this library has batch {self.input_shape[0]}")
        return super().predict(image_or_path)
