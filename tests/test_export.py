"""export: what it refuses, in one line, before anything is written."""

from __future__ import annotations

import pytest
import torch

from autoencoders.cli import main
from autoencoders.deploy import export
from autoencoders.errors import UserError


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "onnx", "--out", "m.pt"], "onnx files end in .onnx; give a name like model.onnx"),
        (["--format", "torchscript", "--out", "m.onnx"], "torchscript files end in .pt"),
        (["--part", "head", "--out", "m.onnx"], "invalid choice: 'head'"),
        (["--format", "tflite", "--out", "m.onnx"], "invalid choice: 'tflite'"),
    ],
)
def test_bad_export_options_get_one_line_and_write_nothing(digits_run, argv, message, tmp_path, capsys):
    argv = [a if not a.startswith("m.") else str(tmp_path / a) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(["export", str(digits_run.dir), *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_model_the_exporter_cannot_take_is_named_in_one_line(digits_run, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported: an operator\nwith a long explanation")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(
        UserError,
        match=r"^the 'dense' model's encoder cannot be exported to onnx \(Unsupported: an operator\)$",
    ):
        export(digits_run.dir, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_an_out_whose_description_cannot_be_written_writes_neither(digits_run, tmp_path):
    (tmp_path / "m.onnx.json").mkdir()
    with pytest.raises(UserError, match=r"m\.onnx\.json is a directory; give another file name$"):
        export(digits_run.dir, tmp_path / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx.json"]
    with pytest.raises(UserError, match=r"^--out must be the path of the file to write, not None$"):
        export(digits_run.dir, None)


def test_export_command_writes_the_file_and_its_description(digits_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", str(digits_run.dir), "--part", "autoencoder", "--out", str(tmp_path / "ae.onnx")])
    assert e.value.code == 0
    assert "wrote the autoencoder (64 → 64 values per row)" in capsys.readouterr().out
    assert (tmp_path / "ae.onnx").stat().st_size > 0 and (tmp_path / "ae.onnx.json").is_file()
