"""Bad input gives a UserError with a message that says what is wrong (and, via the CLI, one line)."""

from __future__ import annotations

import errno
import gzip
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST, idx_bytes, write_idx

import autoencoders
from autoencoders import DataConfig, UserError, load_dataset
from autoencoders.cli import main
from autoencoders.errors import out_of_resources
from autoencoders.io.checkpoint import atomic_write


def test_missing_idx_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(data=f"idx:{tmp_path / 'nope'}"))


def test_idx_directory_missing_a_file(idx_dir):
    directory, _ = idx_dir()
    (directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


def test_truncated_gzip(idx_dir):
    directory, _ = idx_dir(gz=True)
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz is not a readable IDX file"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


def test_file_named_gz_that_is_not_gzip(idx_dir):
    directory, arrays = idx_dir(gz=True)
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(idx_bytes(arrays["t10k-images-idx3-ubyte"]))
    with pytest.raises(UserError, match="not a readable IDX file"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


def test_wrong_idx_magic(idx_dir):
    directory, _ = idx_dir()
    path = directory / "train-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[0:2] = b"PK"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="not an IDX file.*magic"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


@pytest.mark.parametrize("change", [-5, +3], ids=["truncated", "padded"])
def test_idx_with_wrong_data_length(idx_dir, change):
    directory, _ = idx_dir()
    path = directory / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:change] if change < 0 else data + b"\0" * change)
    with pytest.raises(UserError, match="header says 640 data bytes"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


def test_idx_gzip_with_wrong_data_length(idx_dir):
    directory, arrays = idx_dir(gz=True)
    data = idx_bytes(arrays["t10k-images-idx3-ubyte"])[:-1]
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))
    with pytest.raises(UserError, match="truncated"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


def test_idx_image_and_label_counts_differ(idx_dir):
    directory, arrays = idx_dir()
    write_idx(directory / "train-labels-idx1-ubyte", arrays["train-labels-idx1-ubyte"][:-1], gz=False)
    with pytest.raises(UserError, match="counts differ"):
        load_dataset(DataConfig(data=f"idx:{directory}"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_npy(tmp_path, bad):
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    x[3, 1] = bad
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(UserError, match="1 missing \\(NaN\\) or infinite value"):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))


def test_npy_wrong_rank_and_missing_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(20, np.float32))
    with pytest.raises(UserError, match="N×D, N×H×W or N×C×H×W"):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'missing.npy'}"))


def test_npy_labels_of_wrong_length(npy_data, tmp_path):
    xp, _, _ = npy_data
    np.save(tmp_path / "short.npy", np.arange(59))
    with pytest.raises(UserError, match=r"expected \(60,\)"):
        load_dataset(DataConfig(data=f"npy:{xp}", labels=str(tmp_path / "short.npy")))


def test_missing_npy_labels_file(npy_data, tmp_path):
    xp, _, _ = npy_data
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(data=f"npy:{xp}", labels=str(tmp_path / "missing.npy")))


def test_nan_in_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n0.1,0.2\n0.3,nan\n" + "0.5,0.5\n" * 10)
    with pytest.raises(UserError, match="NaN"):
        load_dataset(DataConfig(data=f"csv:{path}"))


def test_rows_in_memory_too_large_for_float32_are_named_not_made_infinite():
    rows = np.tile([[1.0, 2.0], [3.0, 4.0]], (10, 1))
    rows[5, 1] = -1e300
    with pytest.raises(
        UserError, match=r"^the data in memory holds 1 value larger than float32 holds .* column 1"
    ):
        autoencoders.train(data=rows, epochs=1, quiet=True)


def test_float64_columns_that_float32_cannot_tell_apart_are_warned_of_in_files_memory_and_estimators(
    tmp_path,
):
    """A column of 2e8 + 5 × [0, 1] is one value in float32, whatever the scaling after the cast."""
    from autoencoders.errors import DataWarning
    from autoencoders.sklearn import AutoencoderTransformer

    rng = np.random.default_rng(0)
    rows = np.stack([rng.random(60), 2e8 + 5 * rng.random(60)], 1)
    np.save(tmp_path / "x.npy", rows)
    np.savetxt(tmp_path / "x.csv", rows, delimiter=",", header="a,when", comments="", fmt="%.17g")
    said = r"holds 1 column \({}\) whose values differ by little beside their size \(2000000.*subtract each"
    with pytest.warns(DataWarning, match=said.format("1")):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))
    with pytest.warns(DataWarning, match=said.format("'when'")):
        load_dataset(DataConfig(data=f"csv:{tmp_path / 'x.csv'}"))
    with pytest.warns(DataWarning, match="^X " + said.format("1")):
        AutoencoderTransformer(layers=(2,), epochs=1, random_state=0).fit(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same column less its least value: nothing lost
        np.save(tmp_path / "less.npy", rows - rows.min(0))
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'less.npy'}"))


def test_estimators_refuse_what_train_refuses():
    """Values beyond float32, a feature's span beyond it, dates and categories' codes."""
    import pandas as pd

    from autoencoders.sklearn import AutoencoderTransformer

    est = AutoencoderTransformer(layers=(2,), epochs=1, random_state=0)
    rows = np.tile([[1.0, 2.0], [3.0, 4.0]], (10, 1))
    with pytest.raises(UserError, match=r"^X holds 1 value larger than float32 holds .* in column 1"):
        est.fit(np.where(np.arange(20)[:, None] == 3, [[0, 1e39]], rows))
    with pytest.raises(
        UserError, match=r"^feature 0 \(0-based\) of the training rows runs from -3e\+38 to 3e\+38"
    ):
        est.fit(np.where(np.arange(20)[:, None] % 2, [[3e38, 0]], [[-3e38, 1]]))
    frame = pd.DataFrame({"a": np.arange(20.0), "b": pd.Categorical(np.arange(20) % 3)})
    with pytest.raises(UserError, match=r"^column 'b' of X is not numeric; .*category numbers would be read"):
        est.fit(frame)
    with pytest.raises(UserError, match=r"^column 'd' of X holds dates; drop it, or give it as numbers"):
        est.fit(frame.assign(b=1.0, d=pd.date_range("2020-01-01", periods=20)))
    est.fit(rows)
    with pytest.raises(UserError, match=r"^X holds 1 value larger than float32 holds"):
        est.transform([[1.0, 1e39]])


@pytest.mark.parametrize("row", ["0.3,abc", "0.3,", "0.3"], ids=["text", "empty-field", "short-row"])
def test_non_numeric_or_ragged_csv(tmp_path, row):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n0.1,0.2\n" + row + "\n" + "0.5,0.5\n" * 10)
    with pytest.raises(UserError, match=str(path)):
        load_dataset(DataConfig(data=f"csv:{path}"))


def test_csv_unknown_label_column_and_empty_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "0.5,0.5\n" * 12)
    with pytest.raises(UserError, match="label_column 'y' is not in"):
        load_dataset(DataConfig(data=f"csv:{path}", label_column="y"))
    path.write_text("")
    with pytest.raises(UserError, match="empty"):
        load_dataset(DataConfig(data=f"csv:{path}"))


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("digitz", "(did you mean 'digits'?)"),
        ("idx:", "(idx data needs its path: idx:DIR)"),
        ("npy", "(npy data needs its path: npy:FILE)"),
        ("csv:", "(csv data needs its path: csv:FILE)"),
        ("digits:extra", "(digits takes no path: give digits)"),
        ("tar:/x", "; use digits"),
        ("image:photos", "(did you mean images:photos?)"),
        ("npz:x.npy", "(did you mean npy:x.npy?)"),
        (r"c:\data.npy", r"(a .npy file is given as npy:FILE, and there is no file c:\data.npy)"),  # a drive
        ("fashion_mnist", "(did you mean 'fashion-mnist'?)"),
    ],
)
def test_unknown_data_spec(spec, hint):
    with pytest.raises(UserError, match="unknown data spec") as e:
        load_dataset(DataConfig(data=spec))
    assert f"'{spec}' {hint}" in str(e.value) or hint.startswith(";") and f"'{spec}'; use" in str(e.value)


def test_too_few_rows_to_split(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(UserError, match="only 5 rows"):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))


def test_layer_width_must_match_data_width(npy_data, tmp_path):
    xp, _, _ = npy_data
    with pytest.raises(UserError, match="starts with 5 but the data has 6 features"):
        autoencoders.train(data=f"npy:{xp}", layers=[5, 2], epochs=1, out=str(tmp_path / "r"), **FAST)
    assert not (tmp_path / "r" / "model.safetensors").exists()


@pytest.mark.parametrize("use", ["encode", "reconstruct", "score"])
def test_a_split_the_data_lacks_is_refused_in_one_line(digits_run, use):
    with pytest.raises(UserError, match="split must be one of all, train, val, test, not 'tst'"):
        getattr(autoencoders, use)(digits_run.dir, "digits", split="tst")
    with pytest.raises(UserError, match="not 'tst'"):  # for rows in memory too, which are taken whole
        getattr(autoencoders, use)(digits_run.dir, np.zeros((3, 64), np.float32), split="tst")


@pytest.mark.parametrize("labels", [None, np.zeros(30)], ids=["unlabelled", "labelled"])
@pytest.mark.parametrize("use", ["evaluate_run", "classify"])
def test_rows_in_memory_where_only_a_spec_is_taken_are_refused_in_one_line(digits_run, use, labels):
    with pytest.raises(UserError, match="data here must be a data spec .* not rows of type ndarray"):
        getattr(autoencoders, use)(digits_run.dir, data=np.zeros((30, 64), np.float32), labels=labels)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        autoencoders.load(tmp_path)


@pytest.mark.slow
def test_cli_user_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoencoders",
            "train",
            "--data",
            "idx:/nonexistent",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("autoencoders: error:")
    assert "/nonexistent" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_main_exits_2_with_one_line_in_process(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "bogus", "--quiet", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autoencoders: error: unknown data spec 'bogus'")


@pytest.mark.parametrize(
    "error, said",
    [
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 27648000000 bytes. Error code 12 (Cannot allocate memory)"
            ),
            "out of memory (one allocation of 25.7 GiB); make the job smaller: train with a lower "
            "--batch-size, a smaller --image-size or a narrower first layer in --layers",
        ),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total ..."),
            "out of GPU memory (20.00 GiB); make the job smaller: train with a lower --batch-size, a "
            "smaller --image-size or a narrower first layer in --layers; or compute on the CPU: --device cpu",
        ),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "out of memory; make the job smaller: …"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/tmp/rows.f32"),  # a stream's temporary file
            "the disk is full writing /tmp/rows.f32; free space there (runs go to --out, decoded images "
            "and baselines to $AUTOENCODERS_CACHE, streamed rows' temporary files to $TMPDIR)",
        ),
    ],
)
def test_running_out_of_memory_or_disk_is_one_line_without_traceback(
    error, said, monkeypatch, capsys, tmp_path
):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("autoencoders.run.train", fail)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--quiet", "--out", str(tmp_path / "run")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    head, _, tail = said.partition("…")
    assert err.startswith(f"autoencoders: error: {head}") and err.rstrip().endswith(tail.rstrip())


def test_numpys_failed_allocation_is_named_and_other_runtime_errors_keep_their_traceback(
    monkeypatch, tmp_path
):
    with pytest.raises(MemoryError) as caught:
        np.empty(2**62, np.uint8)
    assert out_of_resources(caught.value).startswith("out of memory (4.00 EiB);")
    assert out_of_resources(RuntimeError("MPS backend was selected without support")) is None

    def fail(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr("autoencoders.run.train", fail)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # a defect: shown in full
        main(["train", "--quiet", "--out", str(tmp_path / "run")])


def test_a_full_disk_while_writing_weights_names_the_file_and_leaves_the_old_one(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"before")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match=r"cannot write .*model.safetensors \(No space left on device\)"):
        atomic_write(tmp_path / "model.safetensors", write)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == b"before"


def test_rows_of_another_width_are_refused_before_scaling(tmp_path):
    """Data not in [0, 1] gives the run a real scaling; rows of another width are named, not broadcast."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((100, 6)).astype(np.float32) * 5)
    np.save(tmp_path / "wide.npy", np.zeros((10, 7), np.float32))
    run = autoencoders.train(
        data=f"npy:{tmp_path / 'x.npy'}", layers=[6, 3], epochs=1, out=str(tmp_path / "r"), **FAST
    )
    for data in (np.zeros((4, 7)), f"npy:{tmp_path / 'wide.npy'}"):
        for split in ("all", "test") if isinstance(data, str) else ("all",):
            with pytest.raises(UserError, match="has 7 features but the model expects 6"):
                autoencoders.encode(run.dir, data, split)


def test_python_errors_name_options_as_python_takes_them_and_the_cli_keeps_its_flags(tmp_path, capsys):
    with pytest.raises(UserError, match=r"^top_k_start 2 must be at least top_k 3$"):
        autoencoders.train(data="digits", top_k=3, top_k_start=2, **FAST)
    with pytest.raises(UserError, match=r"^fmt must be onnx or torchscript"):  # export's own name for it
        autoencoders.export(tmp_path, tmp_path / "m.onnx", fmt="zip")
    # a flag without a value is the option set to True, except where its value is what is wrong
    with pytest.raises(UserError, match=r"^tied=True is not available for model vae; leave it out$"):
        autoencoders.train(data="digits", model="vae", tied=True, **FAST)
    with pytest.raises(UserError, match=r"^tied must be true or false, not 'yes'$"):
        autoencoders.train(data="digits", tied="yes", **FAST)
    with pytest.raises(SystemExit):
        main(["train", "--top-k", "3", "--top-k-start", "2"])
    assert "error: --top-k-start 2 must be at least --top-k 3" in capsys.readouterr().err


def test_the_python_functions_are_published_where_pickle_finds_them():
    import pickle

    for fn in (autoencoders.train, autoencoders.encode, autoencoders.cluster, autoencoders.export):
        assert pickle.loads(pickle.dumps(fn)) is fn  # a process pool sends them by name
    from autoencoders.sklearn import AutoencoderTransformer

    fit = AutoencoderTransformer.fit  # its errors in Python's names too, named where it is defined
    where = ("autoencoders.sklearn.transformer", "AutoencoderTransformer.fit")
    assert (fit.__module__, fit.__qualname__) == where


def test_a_command_a_python_error_suggests_keeps_its_flags():
    from autoencoders.config import in_python_names

    def stopped(epochs: int = 1) -> None:
        raise UserError(
            "runs/x stopped; continue it with: autoencoders train --data csv:t.csv --resume runs/x"
        )

    def too_few(n: int = 1) -> None:
        raise UserError("-n must be at least 1; --epochs too; see 'autoencoders sample --help'")

    with pytest.raises(
        UserError, match=r"continue it with: autoencoders train --data csv:t.csv --resume runs/x$"
    ):
        in_python_names()(stopped)()
    said = r"^n must be at least 1; epochs too; see 'autoencoders sample --help'$"
    with pytest.raises(UserError, match=said):
        in_python_names()(too_few)()


def test_a_python_error_suggests_pythons_own_call_where_it_has_one(tmp_path):
    autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=str(tmp_path), **FAST)
    call = re.escape(f"(autoencoders.resume({str(tmp_path)!r}))")
    # a flag without a value is the option set to True
    with pytest.raises(
        UserError,
        match=f"add overwrite=True to replace the run in it, continue it if it is incomplete {call}",
    ):
        autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=str(tmp_path), **FAST)


def test_counts_and_indices_of_the_python_functions_are_checked_in_words(tmp_path):
    run = autoencoders.train(data="digits", model="vae", layers=[64, 8], epochs=1, out=str(tmp_path), **FAST)
    for n, said in (("4", "n must be a whole number, not '4'"), (0, "n must be at least 1, got 0")):
        with pytest.raises(UserError, match=f"^{said}$"):
            autoencoders.sample(run.dir, n=n)
    assert autoencoders.sample(run.dir, n=np.int64(2))[0].shape == (2, 64)
    for pair, said in ((3, "must hold two row indices, e.g. 0,1; got 3"), ((0, 1.5), "must be a whole")):
        with pytest.raises(UserError, match=f"^indices {said}"):
            autoencoders.interpolate(run.dir, "digits", pair)
    with pytest.raises(UserError, match="^steps must be a whole number, not 2.5$"):
        autoencoders.interpolate(run.dir, "digits", steps=2.5)
    for k, said in ((0, "at least 1, got 0"), (-5, "at least 1, got -5"), (2.0, "a whole number, not 2.0")):
        with pytest.raises(UserError, match=f"^iw_samples must be {said}$"):
            autoencoders.score(run.dir, "digits", iw_samples=k)


def test_a_ctrl_c_while_the_command_starts_ends_in_one_line():
    """Before the command's own handling is in place (while its modules load), as after it: one
    line, status 130; a program that imports the package keeps Python's own traceback."""
    interrupted = "import autoencoders; raise KeyboardInterrupt"
    command = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv[0] = '/usr/local/bin/ae'; {interrupted}"],
        capture_output=True,
        text=True,
    )
    assert command.stderr == "autoencoders: interrupted\n" and command.returncode in (130, -2)
    program = subprocess.run([sys.executable, "-c", interrupted], capture_output=True, text=True)
    assert "Traceback" in program.stderr and program.stderr.endswith("KeyboardInterrupt\n")


def test_a_directory_replaced_keeps_what_was_there_when_stopped_between_its_two_moves(tmp_path, monkeypatch):
    import os

    from autoencoders.io import checkpoint

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("kept")
    moves = []

    def stopped(source, target):  # the second move, the new directory into place, never happens
        moves.append(target)
        if len(moves) == 2:
            raise KeyboardInterrupt
        os.rename(source, target)

    monkeypatch.setattr(checkpoint.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.replace_dir(tmp_path / "out", lambda new: (new / "new.txt").write_text("new"))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it
    assert (tmp_path / "out" / "old.txt").read_text() == "kept"
    checkpoint.replace_dir(tmp_path / "out", lambda new: (new / "new.txt").write_text("new"))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


@pytest.mark.parametrize("meanwhile", ["moved it aside", "put its own"])
def test_a_directory_written_by_two_processes_at_once_ends_whole_as_the_last_wrote_it(
    tmp_path, monkeypatch, meanwhile
):
    """Another process writing the same directory just before this one's first move: it moved what
    was there aside (before: an error about a missing file, then a traceback putting it back), or
    it put its own in place once this one had moved the first aside (before: "Directory not empty")."""
    import os

    from autoencoders.io import checkpoint

    out = tmp_path / "out"
    out.mkdir()
    (out / "first.txt").write_text("first")
    moves = []

    def raced(source, target, rename=os.rename):
        moves.append(target)
        if len(moves) == 1 and meanwhile == "moved it aside":
            rename(out, tmp_path / ".theirs")
        rename(source, target)
        if len(moves) == 1 and meanwhile == "put its own":
            out.mkdir()
            (out / "theirs.txt").write_text("theirs")

    monkeypatch.setattr(checkpoint.os, "replace", raced)
    checkpoint.replace_dir(out, lambda new: (new / "new.txt").write_text("new"))
    monkeypatch.undo()
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".theirs") == ["out"]  # nothing left


def test_a_write_clears_the_temporary_files_that_killed_writes_of_its_file_left(tmp_path):
    """A process killed while writing a file (a cached image folder of gigabytes) left its temporary
    file for good; the next write of that file deletes those whose writer is gone (a minute old) or,
    unnamed as earlier versions wrote them, a day old; not one being written, nor another file's."""
    import os
    import subprocess
    import time

    from autoencoders.io import checkpoint

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    gone, alive = int(ended.stdout), os.getpid()
    names = {
        "killed": f".x.npy.{gone}-a1.tmp",
        "writing": f".x.npy.{alive}-b2.tmp",
        "unnamed, old": ".x.npy.c3.tmp",
        "unnamed, recent": ".x.npy.d4.tmp",
        "another file's": f".y.npy.{gone}-e5.tmp",
    }
    hour_ago, day_ago = time.time() - 3600, time.time() - checkpoint.UNNAMED_STALE_SECONDS - 60
    for what, name in names.items():
        (tmp_path / name).write_bytes(b"cut short")
        if what != "unnamed, recent":
            then = day_ago if what == "unnamed, old" else hour_ago
            os.utime(tmp_path / name, (then, then))
    checkpoint.atomic_write(tmp_path / "x.npy", lambda tmp: Path(tmp).write_bytes(b"whole"))
    kept = {names[w] for w in ("writing", "unnamed, recent", "another file's")} | {"x.npy"}
    assert {p.name for p in tmp_path.iterdir()} == kept


def test_an_idx_file_is_read_no_further_than_its_header_says(tmp_path):
    """A gzip file whose body grows far beyond its header's size is not decompressed whole, and a
    header's size beyond 2**63 bytes does not wrap around."""
    from autoencoders.data.sources import read_idx

    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10, 28, 28))
    with gzip.open(tmp_path / "bomb.gz", "wb") as f:
        f.write(header + bytes(10 * 784) + bytes(2**24))
    with pytest.raises(
        UserError, match=r"bomb\.gz is truncated or padded: header says 7840 data bytes, file has more"
    ):
        read_idx(tmp_path / "bomb.gz")
    (tmp_path / "huge").write_bytes(bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big") * 4)
    with pytest.raises(
        UserError, match=r"huge is damaged: its header says 18446744073709551616 data bytes, more"
    ):
        read_idx(tmp_path / "huge")
