import json

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.runtime import Predictor
from pipeline.runtime.profile import profile_predictor

from .conftest import run_deployed

YOLOV3_TINY_CONVS = 13  # darknet's yolov3-tiny.cfg: 11 convs to the two heads, 2 on the second branch


@pytest.fixture(scope="module")
def profile(yolov3_tiny_artifact):
    return profile_predictor(Predictor(yolov3_tiny_artifact.metadata_path), reps=3)


def test_every_conv_of_the_model_is_timed_once_per_inference(profile):
    conv_calls = sum(k.calls for k in profile.kernels if "conv2d" in k.name)
    assert conv_calls == YOLOV3_TINY_CONVS
    assert all(k.seconds > 0 and k.calls >= 1 and k.shapes for k in profile.kernels)
    assert [k.seconds for k in profile.kernels] == sorted((k.seconds for k in profile.kernels), reverse=True)


def test_kernels_account_for_the_inference(profile):
    # what is not a kernel (VM builtins, cold caches) is a gap, not most of the time; kernels
    # timed alone cannot take much longer than the inference that runs them all
    assert 0.5 * profile.inference_s < profile.kernels_s < 1.6 * profile.inference_s
    assert f"{len(profile.kernels)} more kernels" not in profile.table(top=len(profile.kernels))
    assert "more kernels" in profile.table(top=3)


def test_wrong_input_shape_is_refused(yolov3_tiny_artifact):
    with pytest.raises(InputError, match=r"\(1, 3, 416, 416\)"):
        profile_predictor(Predictor(yolov3_tiny_artifact.metadata_path), np.zeros((1, 3, 320, 320), np.float32))


def test_profile_runs_on_a_board_with_only_the_runtime(yolov3_tiny_artifact, tmp_path):
    out = tmp_path / "profile.json"
    code = ("from pipeline.runtime.profile import main\n"
            "sys.exit(main(['--artifact', sys.argv[1], '--top', '5', '--reps', '2', '--json', sys.argv[2]]))\n")
    proc = run_deployed(code, yolov3_tiny_artifact.metadata_path, out)
    assert proc.returncode == 0, proc.stderr
    assert "kernel calls" in proc.stdout and "conv2d" in proc.stdout
    saved = json.loads(out.read_text())
    assert sum(k["calls"] for k in saved["kernels"] if "conv2d" in k["name"]) == YOLOV3_TINY_CONVS
