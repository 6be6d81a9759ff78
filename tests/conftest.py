import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import build
from pipeline.models import load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def yolov3_tiny():
    return load_model("yolov3-tiny")


@pytest.fixture(scope="session")
def yolov3_tiny_compiled(yolov3_tiny):
    return build.compile_spec(yolov3_tiny, "x86")


@pytest.fixture(scope="session")
def yolov3_tiny_artifact(yolov3_tiny_compiled, tmp_path_factory):
    return build.export(yolov3_tiny_compiled, tmp_path_factory.mktemp("y3t"))


@pytest.fixture(scope="session")
def yolov8n_compiled():
    return build.compile_spec(load_model("yolov8n", 320), "x86")


def run_deployed(code: str, *args) -> subprocess.CompletedProcess:
    """Run Python as on a board: runtime-only TVM, and torch made unimportable."""
    env = dict(os.environ, TVM_USE_RUNTIME_LIB="1", PYTHONPATH=str(REPO))
    prelude = "import sys; sys.modules['torch'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
