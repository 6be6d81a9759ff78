"""The engines a benchmark compares, behind one small interface.

An engine runs a fixed-shape NCHW float32 batch and returns the head maps as numpy arrays.
``set_threads`` sets that engine's own intra-op thread count explicitly (no engine is left on
its default), and ``stream()`` returns an independent single-thread instance for parallel
serving. Each engine also says how big the file it loads is.
"""

from pathlib import Path

import numpy as np

from ..runtime.threads import set_threads

ENGINE_ORDER = ("pytorch-eager", "torch.compile", "onnxruntime", "openvino", "tvm")


class Engine:
    name = ""

    def __init__(self, artifact_path):
        self.artifact_mb = Path(artifact_path).stat().st_size / 1e6

    def set_threads(self, n: int):
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> list:
        raise NotImplementedError

    def stream(self) -> "Engine":
        """An independent instance to run beside others in its own Python thread; the worker
        calls ``set_threads(1)`` from that thread (TVM's thread pool is per calling thread)."""
        raise NotImplementedError


class TorchEager(Engine):
    name = "pytorch-eager"

    def __init__(self, module, weights_path):
        super().__init__(weights_path)
        import torch

        self.torch, self.module = torch, module.eval()

    def set_threads(self, n):
        self.torch.set_num_threads(n)

    def __call__(self, x):
        with self.torch.inference_mode():
            return [o.numpy() for o in self.module(self.torch.from_numpy(x))]

    def stream(self):
        # torch's intra-op thread count is process-wide and a module is safe to share for inference.
        return self


class TorchCompile(TorchEager):
    name = "torch.compile"

    def __init__(self, module, weights_path):
        super().__init__(module, weights_path)
        self.module = self.torch.compile(module.eval())


class OnnxRuntime(Engine):
    name = "onnxruntime"

    def __init__(self, onnx_path):
        super().__init__(onnx_path)
        self.path, self.sessions, self.session = str(onnx_path), {}, None
        self.set_threads(1)

    def _session(self, n):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = n, 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])

    def set_threads(self, n):
        if n not in self.sessions:
            self.sessions[n] = self._session(n)
        self.session = self.sessions[n]
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input_name: x})

    def stream(self):
        return OnnxRuntime(self.path)


class OpenVINO(Engine):
    name = "openvino"

    def __init__(self, onnx_path):
        super().__init__(onnx_path)
        import openvino as ov

        self.core, self.path, self.compiled = ov.Core(), str(onnx_path), {}
        self.set_threads(1)

    def set_threads(self, n):
        if n not in self.compiled:
            # f32: on CPUs with AVX-512 BF16 or AMX OpenVINO computes in bfloat16 unless told
            # otherwise (head maps 0.09 off eager's here): peers are compared at the model's precision.
            self.compiled[n] = self.core.compile_model(self.path, "CPU", {
                "INFERENCE_NUM_THREADS": n, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                "INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled[n].create_infer_request()

    def __call__(self, x):
        result = self.request.infer([x])
        return [np.array(v) for v in result.values()]

    def stream(self):
        return OpenVINO(self.path)


class TVMLibrary(Engine):
    name = "tvm"

    def __init__(self, artifact):
        """``artifact``: an exported Artifact (its metadata says whether it is tuned) or a .so path."""
        library_path = getattr(artifact, "library", artifact)
        super().__init__(library_path)
        import tvm
        from tvm.runtime.vm import VirtualMachine

        self.tuning = artifact.metadata["tuning"] if hasattr(artifact, "metadata") else {"database": None}
        self.preset = artifact.metadata.get("target_preset") if hasattr(artifact, "metadata") else None
        self.tuned = bool(self.tuning.get("tuned_tasks"))  # a database may hold no record for this shape
        self.tvm, self.path = tvm, str(library_path)
        self.lib = tvm.runtime.load_module(self.path)
        self.dev = tvm.cpu()
        self.vm = VirtualMachine(self.lib, self.dev)

    def set_threads(self, n):
        set_threads(self.tvm, n)

    def __call__(self, x):
        out = self.vm["main"](self.tvm.runtime.tensor(x, self.dev))
        return [o.numpy() for o in (out if not hasattr(out, "numpy") else [out])]

    def stream(self):
        return TVMLibrary(self.path)
