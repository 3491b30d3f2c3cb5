"""reproduce runs each published experiment end to end and reports it against the paper's value."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import torch
from helpers import FAST, ctrl_c_at_batch

from autoencoders import UserError
from autoencoders.reproduce import EXPERIMENTS, FINDINGS, PUBLISHED, reproduce

SMALL = {"hinton2006": [64, 48, 32, 8], "sda": [64, 48, 48], "dec-init": [64, 48, 10], "dec": [64, 48, 10]}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_each_experiment_runs_and_tables_published_against_measured(name, tmp_path):
    run, table = reproduce(name, data="digits", out=tmp_path / name, layers=SMALL[name], **FAST)
    assert (run.dir / "reproduction.md").read_text() == table
    assert "published values are on MNIST; this run is on digits" in table
    # the command that made it, the directory given to it included
    command = f"autoencoders reproduce {name} --data digits --budget quick --out {shlex.quote(str(run.dir))}"
    assert f"`{command}`." in table
    assert f"This run's stack: {'-'.join(map(str, SMALL[name]))}." in table  # not the paper's
    assert f"The paper found {FINDINGS[name][0]}; this run did" in table  # digits have labels: all tested
    metrics = json.loads((run.dir / "metrics.json").read_text())
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]
    assert [r[0].lstrip("| ") for r in rows] == [what for what, _, _ in PUBLISHED[name]]
    if name == "hinton2006":
        assert rows[0][2].rstrip(" |") == f"{metrics['test_sse_per_image']:.3f}"
        assert run.config.pretrain.pretrain == "greedy" and run.config.model.code_activation == "linear"
        # digits' 1,294 training rows are 21 batches: the quick budget's 1 and 5 epochs become 39
        assert (
            metrics["n_train"] == 1294
            and run.config.pretrain.pretrain_epochs == run.config.train.epochs == 39
        )
        assert "Its schedule: 39 pretraining epochs per layer and 39 end-to-end epochs, far fewer" in table
        held = metrics["test_sse_per_image"] < metrics["pca_sse_per_image"]
        said = "did too" if held else "did not"
        assert (
            f"The paper found the autoencoder's test SSE below PCA's at the same code size; this run {said}."
            in table
        )
    if name == "sda":  # fine-tuned for the classifier's 1,000 updates: 5 epochs of digits are 105
        clf = json.loads((run.dir / "classifier-1" / "metrics.json").read_text())
        assert clf["updates"] >= 1000 and clf["test_accuracy"] > 0.5
    if name == "dec":  # clustered all 1,797 digits, DEC beside k-means on the codes and on the pixels
        dec = json.loads((run.dir / "cluster-dec-10" / "clusters.json").read_text())
        assert dec["rows"] == 1797 and rows[0][2].rstrip(" |") == f"{dec['accuracy']:.3f}"
        kmeans = json.loads((run.dir / "cluster-kmeans-10" / "clusters.json").read_text())
        said = "did too" if dec["accuracy"] > kmeans["accuracy"] else "did not"
        assert f"The paper found DEC more accurate than k-means on the codes; this run {said}." in table
        report = (run.dir / "report.html").read_text()  # DEC's training, as it ended, in the report
        ended = "settled" if dec["converged"] else "stopped by --epochs before settling"
        assert f"<td>{dec['updates']} updates, {ended}</td>" in report


def test_an_experiment_keeps_its_hidden_widths_on_the_datas_own_width(tmp_path):
    settings = FAST | {"epochs": 1, "pretrain_epochs": 1}
    run, _ = reproduce("dec-init", data="digits", out=tmp_path / "r", **settings)
    assert run.config.model.layers == [64, 500, 500, 2000, 10]  # digits have 64 features, MNIST 784


def test_unknown_experiment_and_budget_are_refused():
    with pytest.raises(UserError, match="choose from hinton2006, sda, dec-init, dec"):
        reproduce("lecun1998")
    with pytest.raises(UserError, match="--budget must be quick or full"):
        reproduce("sda", budget="huge")


@pytest.mark.parametrize("name", [n for n, e in EXPERIMENTS.items() if e.scored_by_labels])
def test_an_experiment_scored_by_labels_refuses_unlabelled_data_before_it_trains(name, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((200, 64), dtype=np.float32))
    with pytest.raises(
        UserError, match=rf"^{name} scores .* has none: give labelled data .*reproduce hinton2006"
    ):
        reproduce(name, data=f"npy:{tmp_path / 'x.npy'}", out=tmp_path / "r", **FAST)
    assert not (tmp_path / "r").exists()


def test_an_interrupted_reproduction_continues_when_run_again(tmp_path):
    """Its run resumes from its last saved epoch to the uninterrupted run's weights, and the write-up
    follows; a run of other settings in --out is not taken for it."""
    settings = {"layers": SMALL["hinton2006"], "save_every": 0, **FAST}
    whole, table = reproduce("hinton2006", data="digits", out=tmp_path / "whole", **settings)
    with ctrl_c_at_batch(100), pytest.raises(KeyboardInterrupt, match="run the same reproduce command again"):
        reproduce("hinton2006", data="digits", out=tmp_path / "cut", **settings)
    assert not (tmp_path / "cut" / "reproduction.md").exists()
    run, again = reproduce("hinton2006", data="digits", out=tmp_path / "cut", **settings)
    # the write-up the uninterrupted run wrote, but for the directory its command names
    assert (
        (run.dir / "reproduction.md").read_text()
        == again
        == table.replace(shlex.quote(str(tmp_path / "whole")), shlex.quote(str(tmp_path / "cut")))
    )
    for name, value in whole.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], value), name
    with pytest.raises(UserError, match="is not empty"):  # another stack: not this experiment's run
        reproduce("hinton2006", data="digits", out=tmp_path / "cut", **{**settings, "layers": [64, 8]})


def test_a_reproduction_on_a_csv_records_how_it_read_the_data_and_its_blank_labels(tmp_path):
    """The command a write-up names runs again as it is: with the label column it read the file by
    (before, the command line had no such flag and the write-up left it out)."""
    import pandas as pd
    from sklearn.datasets import load_digits

    from autoencoders.parser import build_parser

    digits = load_digits()
    frame = pd.DataFrame(digits.data / 16, columns=[f"p{i}" for i in range(64)])
    frame["digit"] = np.where(np.arange(len(frame)) % 3 == 0, "", digits.target.astype(str))
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = f"csv:{tmp_path / 't.csv'}"
    settings = FAST | {"epochs": 1, "pretrain_epochs": 1, "layers": SMALL["dec-init"]}
    run, table = reproduce("dec-init", data=spec, out=tmp_path / "r", label_column="digit", **settings)
    command = table.split("`")[1]
    assert command.endswith(" --label-column digit")
    assert build_parser().parse_args(command.split()[1:]).label_column == "digit"  # a command that parses
    assert "the accuracies below count the rows with a class" in table
