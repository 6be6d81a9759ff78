import dataclasses
import json
import shutil

import numpy as np
import pytest

from pipeline import assets, build
from pipeline.errors import ArtifactError, InputError
from pipeline.runtime import Predictor, read_artifact

from .conftest import run_deployed


@pytest.fixture(scope="module")
def predictor(yolov3_tiny_artifact):
    return Predictor(yolov3_tiny_artifact.metadata_path)


def test_dog_photo_has_a_dog_a_bicycle_and_a_car(predictor):
    labels = {d.label for d in predictor.predict(assets.photo("dog.jpg"))}
    assert {"dog", "bicycle", "car"} <= labels


def test_boxes_land_where_the_objects_are(predictor):
    dets = {d.label: d for d in predictor.predict(assets.photo("dog.jpg"))}
    x1, y1, x2, y2 = dets["dog"].box
    # The dog sits in the lower left of darknet's 768x576 dog.jpg.
    assert x1 < 200 and x2 < 420 and y1 > 150 and y2 > 450


def test_predictor_runs_with_only_the_tvm_runtime_and_numpy(yolov3_tiny_artifact):
    code = (
        "from pipeline.runtime import Predictor\n"
        "p = Predictor(sys.argv[1])\n"
        "labels = sorted({d.label for d in p.predict(sys.argv[2])})\n"
        "heavy = [m for m in sys.modules if m.startswith(('tvm.s_tir', 'tvm.relax.frontend')) or m == 'tvm.relax']\n"
        "print(','.join(labels)); print('heavy:', heavy)\n")
    proc = run_deployed(code, yolov3_tiny_artifact.metadata_path, assets.photo("dog.jpg"))
    assert proc.returncode == 0, proc.stderr
    labels, heavy = proc.stdout.strip().splitlines()[-2:]
    assert {"dog", "bicycle", "car"} <= set(labels.split(","))
    assert heavy == "heavy: []"


def test_unreadable_image_is_a_clear_error(predictor, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="cannot read image"):
        predictor.predict(bad)
    with pytest.raises(InputError, match="image not found"):
        predictor.predict(tmp_path / "nope.jpg")


def test_wrong_input_shape_names_the_expected_one(predictor):
    with pytest.raises(InputError, match=r"\(1, 3, 416, 416\).*\(1, 3, 320, 320\)"):
        predictor.run(np.zeros((1, 3, 320, 320), np.float32))


def _copy_artifact(artifact, directory):
    shutil.copy(artifact.library, directory / artifact.library.name)
    shutil.copy(artifact.metadata_path, directory / artifact.metadata_path.name)
    return directory / artifact.library.name, directory / artifact.metadata_path.name


def test_corrupt_library_is_refused_before_loading(yolov3_tiny_artifact, tmp_path):
    lib, meta = _copy_artifact(yolov3_tiny_artifact, tmp_path)
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its metadata"):
        Predictor(meta)


@pytest.mark.parametrize("corruption, message", [
    (lambda m: "{ not json", "corrupt metadata"),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != "decoder"}), "lacks: decoder"),
    (lambda m: json.dumps({**m, "format_version": 99}), "metadata format 99"),
    (lambda m: json.dumps({**m, "library": "elsewhere.so"}), "missing"),
])
def test_corrupt_or_mismatched_metadata_is_refused(yolov3_tiny_artifact, tmp_path, corruption, message):
    _, meta = _copy_artifact(yolov3_tiny_artifact, tmp_path)
    meta.write_text(corruption(json.loads(meta.read_text())))
    with pytest.raises(ArtifactError, match=message):
        read_artifact(meta)


def test_library_built_for_a_wider_cpu_is_refused(yolov3_tiny_artifact, tmp_path):
    _, meta = _copy_artifact(yolov3_tiny_artifact, tmp_path)
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "required_cpu_flags": ["avx2", "an_isa_no_cpu_has"]}))
    with pytest.raises(ArtifactError, match="lacks an_isa_no_cpu_has"):
        Predictor(meta)


def test_artifact_directory_errors(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        read_artifact(tmp_path / "absent")
    with pytest.raises(ArtifactError, match="no <name>.so"):
        read_artifact(tmp_path)


class DiskFullExecutable:
    """Writes half a library and fails, as an export interrupted by a full disk would."""

    def export_library(self, path):
        with open(path, "wb") as f:
            f.write(b"half a library")
        raise OSError("disk full")


def test_failed_export_leaves_the_previous_artifact_whole(yolov3_tiny_compiled, yolov3_tiny_artifact, tmp_path):
    lib, meta = _copy_artifact(yolov3_tiny_artifact, tmp_path)
    before = (lib.read_bytes(), meta.read_text())
    interrupted = dataclasses.replace(yolov3_tiny_compiled, executable=DiskFullExecutable())
    with pytest.raises(OSError, match="disk full"):
        build.export(interrupted, tmp_path, name=lib.stem)
    assert (lib.read_bytes(), meta.read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([lib.name, meta.name])
    read_artifact(meta)
