"""The command line tells the truth: every option explained with its default and range, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import subprocess
import sys
import warnings

import pytest

from autoencoders.cli import main
from autoencoders.config import all_sections
from autoencoders.errors import DataWarning
from autoencoders.parser import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_argument_has_help_and_every_valued_option_its_default(command):
    for action in _subcommands()[command]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"{command} {name} has no help"
        takes_value = action.nargs != 0 and action.option_strings and not action.required
        if takes_value and name not in ("--config", "--resume"):  # those have no default to show
            assert "default:" in action.help, f"{command} {name}: {action.help}"
        assert "(default: None)" not in action.help


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_quiet_flag_has_its_short_form(command):
    quiet = [a for a in _subcommands()[command]._actions if "--quiet" in a.option_strings]
    assert all("-q" in a.option_strings for a in quiet)


def test_every_bounded_config_option_shows_its_range_in_help():
    helps = {a.dest: a.help for a in _subcommands()["train"]._actions}
    bounded = [
        f for klass in all_sections().values() for f in dataclasses.fields(klass) if f.metadata["range"]
    ]
    assert len(bounded) > 15
    for f in bounded:
        assert f"must be {f.metadata['range']}" in helps[f.name], f.name
    assert "default: 32,64" in helps["channels"]  # lists shown as they are typed
    assert "default: D,256,64,16" in helps["layers"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "--activation", "rel"], "invalid choice: 'rel'.*did you mean 'relu'"),
        (["trian"], "invalid choice: 'trian'.*did you mean 'train'"),
        ([], "error: give a command: train, evaluate, encode, .*, export; see autoencoders --help"),
        (["encode", "r", "--split", "validation"], "invalid choice: 'validation'.*did you mean 'val'"),
        (["visualize", "r", "--what", "recon", "--nonsense"], "unrecognized arguments: --nonsense; see"),
        (["train", "--activaton", "relu"], "--activaton.*did you mean '--activation'"),
        (["reconstruct", "r", "--data", "digits", "--out", "x.png", "--n", "0"], "--n: must be >= 1, got 0"),
        (["reconstruct", "r", "--data", "digits", "--out", "x.png", "--n", "-3"], "must be >= 1, got -3"),
        (["classify", "r", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
        (["classify", "r", "--labels-fraction", "1.5"], r"must be in \(0, 1\], got 1.5"),
        (["classify", "r", "--lr", "abc"], "--lr: 'abc' is not a number"),
        (["sample", "r", "-n", "x", "--out", "s.png"], "'x' is not an integer"),
        (["interpolate", "r", "--pair", "-1,2"], "reads as an option: write --pair=-1,2"),
        (["interpolate", "r", "--pair"], "--pair: expected one argument; see"),
    ],
)
def test_usage_errors_are_one_line_with_the_fix(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "--help" in err
    assert re.search(expected, err), err


def test_each_warning_is_one_line_shown_once_though_filters_change_between(monkeypatch, capsys):
    """A command that reads the same data twice warns twice; Python shows it again whenever a block
    has changed its filters in between (scikit-learn's and this toolkit's own blocks do)."""

    def command(argv):
        for _ in range(2):
            warnings.warn("the rows are far outside the training range", DataWarning, stacklevel=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
        warnings.warn("another warning", DataWarning, stacklevel=1)
        return 0

    monkeypatch.setattr("autoencoders.cli.run", command)
    with pytest.raises(SystemExit) as done:
        main(["train"])
    assert done.value.code == 0
    assert capsys.readouterr().err.splitlines() == [
        "autoencoders: warning: the rows are far outside the training range",
        "autoencoders: warning: another warning",
    ]


@pytest.mark.slow
def test_the_package_imports_without_docstrings():
    """``python -OO`` strips docstrings, which help(train) and the estimators' help are built from."""
    code = (
        "import autoencoders, autoencoders.sklearn; [getattr(autoencoders, n) for n in autoencoders.__all__]"
    )
    subprocess.run([sys.executable, "-OO", "-c", code], check=True)


# what the command line needs no part of to say how it is used
HEAVY = ("torch", "numpy", "matplotlib", "sklearn")
ANSWER_AT_ONCE = """
import sys
from autoencoders.cli import main
try:
    main({argv!r})
except SystemExit as e:
    print("status", e.code, "loaded", [m for m in {heavy!r} if m in sys.modules])
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["train", "--help"], 0),
        (["classify", "--help"], 0),
        (["train", "--epochs", "x"], 2),
        (["train", "--model", "vea"], 2),
        (["trian"], 2),
        (["visualize", "runs/x", "--what", "nothing"], 2),
        (["export", "runs/x", "--out", "m.onnx", "--part", "head"], 2),
        # refused by the config's checks or the command's own, before any work
        (["train", "--threads", "0"], 2),
        (["train", "--layers", "64,0,3"], 2),
        (["train", "--config", "no-such-file.toml"], 2),
        (["train", "--model", "vae", "--print-config"], 0),
        (["train", "--resume", "runs/x", "--epochs", "3"], 2),
        (["encode", "runs/x", "--out", "codes.txt"], 2),
        (["report", "runs/x", "--out", "r.png"], 2),
        # checked after --out's folder is found writable
        (["sample", "runs/x", "-n", "999999", "--out", "s.png"], 2),
        (["reconstruct", "runs/x", "-n", "5", "--out", "r.npy"], 2),
    ],
)
def test_help_and_usage_errors_answer_without_loading_torch(argv, status):
    """They answer at once: importing torch alone takes over a second."""
    code = ANSWER_AT_ONCE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == f"status {status} loaded []", done.stderr
    if status:
        assert done.stderr.count("\n") == 1 and "error:" in done.stderr


@pytest.mark.slow
def test_every_public_name_is_what_it_says_even_after_its_namesake_package_loads():
    """The package's names load when first used; ``classify``, a function, shares its name with a
    package of modules, which must not take the name when one of them loads first."""
    code = (
        "import autoencoders.classify.heads, autoencoders, types;"
        "assert isinstance(autoencoders.kinds, types.ModuleType), autoencoders.kinds;"
        "bad = [n for n in autoencoders.__all__ if n != 'kinds' and not callable(getattr(autoencoders, n))];"
        "assert not bad, bad;"
        "assert isinstance(autoencoders.datasets, types.ModuleType);"
        "assert not hasattr(autoencoders, '__main__');"
        "print(set(dir(autoencoders)) >= set(autoencoders.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, mask, mode):
    """Weights too, which safetensors writes as a new file of its own: another user who may read
    a run's config may load its weights."""
    text, weights = tmp_path / "out.txt", tmp_path / "model.safetensors"
    code = f"import os, torch; os.umask({mask}); import autoencoders.io.checkpoint as c; "
    code += f"c.write_text({str(text)!r}, ''); c.save_weights({str(weights)!r}, {{'w': torch.zeros(2)}})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert [target.stat().st_mode & 0o777 for target in (text, weights)] == [mode, mode]


CONSOLE = """
import atexit, concurrent.futures, pathlib, sys, threading, time
from autoencoders.cli import console
marks = pathlib.Path(sys.argv[1])
atexit.register(lambda: (marks / "exit handler").write_text("ran"))  # as a library might
late = lambda: (time.sleep(0.3), (marks / "thread").write_text("finished"))
threading.Thread(target=late).start()  # a thread still working when the command ends
concurrent.futures.ThreadPoolExecutor(1).submit(time.sleep, 0).result()  # a pool's idle worker
sys.argv = ["autoencoders", *sys.argv[2:]]
console()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "status"),
    [(["train", "--help"], 0), (["train", "--data", "bogus", "--quiet"], 2), (["--bogus"], 2)],
)
def test_the_command_ends_with_its_status_its_whole_output_its_threads_and_exit_handlers(
    tmp_path, capsys, argv, status
):
    """The ``autoencoders`` command skips Python's teardown of its modules, and nothing else."""
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE, str(tmp_path), *argv], capture_output=True, text=True, timeout=120
    )
    with pytest.raises(SystemExit) as exc:  # the same command in this process, ended as Python ends it
        main(argv)
    in_process = capsys.readouterr()
    assert done.returncode == exc.value.code == status
    assert (done.stdout, done.stderr) == (in_process.out, in_process.err)
    assert len(done.stdout) > 5000 if status == 0 else done.stderr.count("\n") == 1
    assert (tmp_path / "exit handler").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("size", [100, 100_000])
def test_output_whose_reader_went_away_ends_the_command_quietly(size):
    """``autoencoders ... | head`` stops reading early: no traceback, the status of a closed pipe,
    whether the output was still buffered when the command ended or written while it ran."""
    code = (
        "from autoencoders import cli; import sys; sys.argv = ['autoencoders']; "
        f"cli.run = lambda argv: print('x' * {size}) or 0; cli.console()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child.stdout.close()  # before it writes a line
    assert child.wait(timeout=120) == 141
    assert child.stderr.read() == ""


def test_a_command_whose_reader_went_away_midway_ends_quietly(monkeypatch, capsys):
    from autoencoders import cli

    def printing(argv):
        raise BrokenPipeError(32, "Broken pipe")  # as print() does once the reader has gone

    monkeypatch.setattr(cli, "run", printing)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "run"])
    assert exc.value.code == 141 and capsys.readouterr().err == ""


def test_sigterm_stops_a_command_as_ctrl_c_does_and_says_how_to_continue(tmp_path, monkeypatch, capsys):
    """A batch scheduler's time limit or ``kill``: status 143, the way to continue, and the process's
    own SIGTERM handling back once the command returns."""
    import os
    import signal

    from autoencoders.training import loop

    real, seen = loop.epoch_batches, [0]

    def terminated_at_batch_30(*args, **kwargs):
        for batch in real(*args, **kwargs):
            seen[0] += 1
            if seen[0] == 30:  # in the second epoch: the first is saved
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    monkeypatch.setattr(loop, "epoch_batches", terminated_at_batch_30)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "r"
    args = ["train", "--layers", "64,8", "--epochs", "3", "--save-every", "0", "--out", str(out), "--quiet"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--precision", "fp32", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 143 and signal.getsignal(signal.SIGTERM) is before
    kept = f"{out} is kept as saved in stage 'train' after epoch 1"
    kept += f"; continue with: autoencoders train --resume {out}"
    assert err == f"autoencoders: terminated (SIGTERM); {kept}"


def test_flags_of_names_take_a_name_with_a_comma_in_double_quotes_as_a_csv_line_does():
    """A CSV's names may hold commas (``"dog, brown"``): a flag of names reads them as a CSV line
    does, and the hints that name them write them so."""
    from autoencoders.options import names_flag

    args = build_parser().parse_args(["train", "--hold-out", '"dog, brown",cat', "--columns", "a, b"])
    assert args.hold_out == ["dog, brown", "cat"] and args.columns == ["a", "b"]
    shown = names_flag(["dog, brown", "cat"])
    assert build_parser().parse_args(["train", "--hold-out", *shlex.split(shown)]).hold_out == [
        "dog, brown",
        "cat",
    ]


def test_the_version_printed_is_the_one_the_package_is_built_as():
    import tomllib
    from pathlib import Path

    from autoencoders.version import __version__

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__
