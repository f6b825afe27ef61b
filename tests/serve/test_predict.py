from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from serve import predict
from serve.predict import main
from tests.conftest import make_photo
from tests.serve.conftest import LABELS, TinyModel


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    make_photo(tmp_path / "a.jpg", seed=1)
    make_photo(tmp_path / "sub" / "b.data", seed=2, fmt="PNG")  # an image whatever its extension
    (tmp_path / "notes.txt").write_text("not a photo")
    return tmp_path


def test_json_lines_for_a_folder(
    tiny_model: TinyModel, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(folder), "--model", str(tiny_model.onnx), "--json", "--threads", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in lines] == ["a.jpg", "b.data"]
    for r in lines:
        assert r["label"] in LABELS and r["decision"] in ("flag", "review", "reject")
        assert (
            r["image"]["width"] == 96
            and len(r["image"]["sha256"]) == 64
            and r["model"]["name"] == "camid-tiny"
        )
        assert "heatmap_png" not in r and r["location"] is None


def test_table_and_failures(tiny_model: TinyModel, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = folder / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 50)
    code = main(
        [str(folder / "a.jpg"), str(bad), str(folder / "missing.jpg"), "--model", str(tiny_model.onnx)]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "a.jpg" in out and "decision" in out.splitlines()[0]
    assert "broken.jpg" in err and "missing.jpg" in err


def test_heatmaps_are_written(
    tiny_model: TinyModel, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "heat"
    assert (
        main(
            [str(folder / "a.jpg"), "--model", str(tiny_model.onnx), "--json", "--heatmap-dir", str(out_dir)]
        )
        == 0
    )
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert Image.open(result["heatmap"]).format == "PNG" and Path(result["heatmap"]).parent == out_dir


def test_model_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = make_photo(tmp_path / "a.jpg")
    assert main([str(photo), "--model", str(tmp_path / "none.onnx")]) == 2
    monkeypatch.setattr(predict, "default_model_path", lambda: tmp_path / "release" / "camid-default.onnx")
    assert main([str(photo)]) == 2
    assert "no release model" in capsys.readouterr().err
    assert main([]) == 2


def test_blank_tiny_and_missing_photos_get_one_clear_line_each(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.new("RGB", (640, 480)).save(tmp_path / "black.jpg")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "dot.png")
    paths = [tmp_path / "black.jpg", tmp_path / "dot.png", tmp_path / "missing.jpg"]
    code = main([*map(str, paths), "--model", str(tiny_model.onnx), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = dict(line.split(": ", 1) for line in err.splitlines())
    assert lines[str(paths[0])].startswith("the photo is one flat colour (blank)")
    assert lines[str(paths[1])].startswith("1x1 pixels is too small to show a camera")
    assert lines[str(paths[2])] == "No such file or directory"


def test_decoding_ahead_keeps_the_order_and_the_failures(tiny_model: TinyModel, tmp_path: Path) -> None:
    """Photos decoded a batch ahead of the model come out in the order given, with every broken
    file in its place, exactly as when each batch is decoded and then classified."""
    from serve.engine import Engine

    paths = []
    for i in range(7):
        path = tmp_path / f"p{i}.jpg"
        if i in (2, 5):
            path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 50)  # a truncated JPEG
        else:
            make_photo(path, seed=10 + i)
        paths.append(path)
    engine = Engine.load(tiny_model.onnx, threads=1)
    runs = [list(predict.predict_paths(engine, paths, batch_size=2, ahead=a)) for a in (0, 1, 3)]
    for outcomes in runs:
        assert [o.path.name for o in outcomes] == [p.name for p in paths]
        assert [o.result is None for o in outcomes] == [i in (2, 5) for i in range(7)]
        assert all("corrupt" in o.problem for o in outcomes if o.result is None)
    labels = [[o.result["label"] if o.result else None for o in outcomes] for outcomes in runs]
    assert labels[0] == labels[1] == labels[2]
