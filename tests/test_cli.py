import re

from pipeline import assets
from pipeline.cli import main


def test_compile_then_predict_and_profile(tmp_path, capsys):
    assert main(["compile", "--model", "yolov3-tiny", "--imgsz", "416", "--out", str(tmp_path / "a")]) == 0
    png = tmp_path / "dog.png"
    assert main(["predict", "--artifact", str(tmp_path / "a"), "--image", str(assets.photo("dog.jpg")),
                 "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "dog" in out and "bicycle" in out and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["profile", "--artifact", str(tmp_path / "a"), "--top", "3", "--reps", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "kernel calls" in table[0] and "conv2d" in table[2] and "more kernels" in table[-1]


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["compile", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert main(["compile", "--model", "yolov3-tiny", "--target", "sparc", "--out", str(tmp_path)]) == 2
    assert main(["predict", "--artifact", str(tmp_path / "missing"), "--image", "x.jpg"]) == 2
    assert main(["profile", "--artifact", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("slimdet: error: ") for line in err)
    assert "unknown model 'nope'" in err[0] and "unknown target 'sparc'" in err[1]
    assert "not found" in err[2] and "not found" in err[3]


def test_prune_writes_a_named_variant_and_bad_compression_input_exits_2(tmp_path, capsys):
    assert main(["prune", "--model", "yolov8-digits", "--ratio", "0.3", "--weights-dir", str(tmp_path),
                 "--variant", "p30"]) == 0
    assert "MACs" in capsys.readouterr().out and (tmp_path / "yolov8-digits-p30.pt").exists()
    assert main(["compile", "--model", "yolov8-digits", "--variant", "p30", "--weights-dir", str(tmp_path),
                 "--untuned", "--out", str(tmp_path / "p30")]) == 0
    assert len(list((tmp_path / "p30").glob("yolov8-digits-p30-*.so"))) == 1
    assert main(["compile", "--model", "yolov8-digits", "--variant", "nope", "--out", str(tmp_path / "o")]) == 2
    assert main(["prune", "--model", "yolov8-digits", "--ratio", "1.5", "--weights-dir", str(tmp_path)]) == 2
    assert main(["distill", "--model", "yolov8-digits", "--variant", "p30", "--weights-dir", str(tmp_path),
                 "--images", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("slimdet: error: ") for line in err)
    assert "no variant 'nope'" in err[0] and "pruning ratio" in err[1] and "not a directory" in err[2]


def test_a_distillation_stopped_by_its_time_budget_says_how_to_keep_its_steps(tmp_path, capsys):
    assert main(["prune", "--model", "yolov8-digits", "--ratio", "0.3", "--weights-dir", str(tmp_path),
                 "--variant", "p30"]) == 0
    variant = tmp_path / "yolov8-digits-p30.pt"
    before = variant.read_bytes()
    run = ["distill", "--model", "yolov8-digits", "--variant", "p30", "--weights-dir", str(tmp_path), "--batch", "2",
           "--checkpoint", str(tmp_path / "last.pt")]
    assert main([*run, "--steps", "1000", "--time-budget", "1"]) == 0
    hint = re.search(r"the variant is unchanged: .* --steps (\d+)", capsys.readouterr().out)
    assert hint and variant.read_bytes() == before
    assert main([*run, "--steps", hint.group(1)]) == 0
    assert "saved the recovered variant 'p30'" in capsys.readouterr().out and variant.read_bytes() != before
