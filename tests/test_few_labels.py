"""Few labels: class-balanced subsets without test leakage, kNN on codes, semi-supervised
training that learns from unlabelled rows, and the ladder network."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import FAST, on_cpu

import autoencoders
from autoencoders.classify import few_labels
from autoencoders.classify.few_labels import FewLabels, labelled_subset, train_classifier
from autoencoders.classify.heads import KNNHead
from autoencoders.classify.ladder import Combinator, Ladder
from autoencoders.cli import run as cli_run
from autoencoders.config import UserError


def test_n_labels_are_class_balanced_deterministic_and_checked():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    rows = labelled_subset(y, None, seed=3, n_labels=22)
    counts = np.bincount(y[rows], minlength=4)
    assert counts.sum() == 22 and counts.max() - counts.min() == 1  # 5 each, 2 classes get one more
    assert len(np.unique(rows)) == 22
    np.testing.assert_array_equal(rows, labelled_subset(y, None, seed=3, n_labels=22))
    assert not np.array_equal(rows, labelled_subset(y, None, seed=4, n_labels=22))
    with pytest.raises(UserError, match="fewer than the 4 classes"):
        labelled_subset(y, None, seed=0, n_labels=3)
    with pytest.raises(UserError, match="class 3 has 20 labelled training rows.*at most 80 labels"):
        labelled_subset(y, None, seed=0, n_labels=100)


@pytest.fixture(scope="module")
def ds(digits_run):
    return autoencoders.load_dataset(
        digits_run.config.data, scaler=autoencoders.trained.open_run(digits_run.dir).scaler
    )


def _train(digits_run, ds, **how):
    cfg = copy.deepcopy(digits_run.config.train)
    cfg.quiet, cfg.precision, cfg.lr = True, "fp32", 1e-3
    return train_classifier(digits_run.model, ds, cfg, FewLabels(**how))


@pytest.mark.parametrize("method", ["finetune", "semi", "ladder"])
def test_test_rows_never_reach_training(digits_run, ds, method):
    """Training with the test split replaced by noise gives the very same weights."""
    how = dict(method=method, n_labels=30, epochs=2)
    result = _train(digits_run, ds, **how)
    noisy = copy.copy(ds)
    g = torch.Generator().manual_seed(1)
    noisy.x_test = torch.rand(ds.x_test.shape, generator=g)
    noisy.y_test = ds.y_test[torch.randperm(len(ds.y_test), generator=g)]
    other = _train(digits_run, noisy, **how)
    a, b = result.model.state_dict(), other.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result.metrics["labelled_examples"] == 30 and result.metrics["validation_labels"] == 30


def test_the_labelled_pixels_probe_is_computed_once_for_the_same_labelled_rows(digits_run, ds, monkeypatch):
    calls = []
    probe = few_labels.linear_probe_accuracy
    monkeypatch.setattr(few_labels, "linear_probe_accuracy", lambda *a: calls.append(len(a[0])) or probe(*a))
    first = _train(digits_run, ds, method="finetune", n_labels=40, epochs=1).metrics
    again = _train(digits_run, ds, method="frozen", n_labels=40, epochs=1).metrics
    assert calls == [40]  # the same 40 labelled rows: read back
    assert again["pixels_linear_probe_accuracy"] == first["pixels_linear_probe_accuracy"]
    cfg = dataclasses.replace(digits_run.config.train, quiet=True, precision="fp32", seed=4)
    train_classifier(digits_run.model, ds, cfg, FewLabels(method="finetune", n_labels=40, epochs=1))
    assert calls == [40, 40]  # other labelled rows: another probe


def test_validation_labels_come_from_the_validation_split_and_stop_training(digits_run, ds):
    seen = {}
    real = few_labels.fit

    def spy(step, rows, val, *args, **kw):
        seen["val"] = val
        return real(step, rows, val, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(few_labels, "fit", spy)
        result = _train(digits_run, ds, n_labels=20, epochs=300, patience=3)
    assert result.metrics["validation_labels"] == 20
    validation = {tuple(r) for r in ds.x_val.tolist()}
    assert {tuple(r) for r in seen["val"][0].cpu().tolist()} <= validation  # rows of the validation split
    assert len(result.history) < 300  # the validation cross-entropy stopped improving
    assert {"val_loss", "val_accuracy", "train_accuracy"} <= set(result.history[0])


def test_without_a_validation_split_validation_labels_come_from_training_rows_not_labelled(digits_run, ds):
    """A run trained with --val-fraction 0 still judges its epochs (to stop early and keep the best
    weights): on as many labels of other training rows."""
    seen = {}
    real = few_labels.fit

    def spy(step, rows, val, *args, **kw):
        seen["val"] = val
        return real(step, rows, val, *args, **kw)

    no_val = dataclasses.replace(ds, x_val=ds.x_val[:0], y_val=ds.y_val[:0])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(few_labels, "fit", spy)
        result = _train(digits_run, no_val, n_labels=20, epochs=5)
    assert result.metrics["validation_labels"] == 20 and result.metrics["validation_from"] == "train"
    assert all(math.isfinite(h["val_loss"]) for h in result.history)
    labelled = {tuple(r) for r in ds.x_train[FewLabels(n_labels=20).subset(ds.y_train.numpy(), 0)].tolist()}
    x_val, y_val = (t.cpu() for t in seen["val"])
    assert len(x_val) == 20 and not labelled & {tuple(r) for r in x_val.tolist()}  # none of them labelled
    rows = [ds.x_train.tolist().index(r) for r in x_val.tolist()]  # training rows, with their own labels
    assert y_val.tolist() == ds.y_train[rows].tolist()
    assert _train(digits_run, ds, n_labels=20, epochs=1).metrics["validation_from"] == "val"


def test_frozen_encoder_weights_are_unchanged(digits_run, ds):
    result = _train(digits_run, ds, method="frozen", n_labels=30, epochs=5)
    trained = result.model.autoencoder.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in digits_run.model.state_dict().items())


def test_knn_head_votes_and_picks_k_on_validation_labels(digits_run, ds):
    # directions decide, not lengths: class 0 points along x, class 1 along y
    codes = torch.tensor([[1.0, 0.0], [9.0, 1.0], [0.0, 1.0], [1.0, 9.0], [0.1, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    equal = KNNHead(codes, labels, n_classes=2, k=3, temperature=None)
    share = torch.softmax(equal(torch.tensor([[5.0, 0.1], [0.2, 0.1]])), 1)
    assert share.argmax(1).tolist() == [0, 0]
    assert share[1, 0] == pytest.approx(2 / 3, abs=1e-3)  # two of its three neighbours are class 0
    equal.k = 2
    tie = torch.softmax(equal(torch.tensor([[1.0, 0.9]])), 1)  # one vote each: the nearest decides
    assert tie.argmax(1).item() == 0
    # weighted votes: one very near class-1 code outweighs two farther class-0 codes
    near = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.6, 1.0]])
    query = torch.tensor([[0.55, 1.0]])
    for temperature, winner in ((None, 0), (0.1, 1)):
        head = KNNHead(near, torch.tensor([0, 0, 1]), n_classes=2, k=3, temperature=temperature)
        assert head(query).argmax(1).item() == winner
    assert KNNHead(near, torch.tensor([0, 0, 1]), n_classes=2, k=3).temperature == 0.1  # the default
    result = _train(digits_run, ds, method="knn", n_labels=100)
    assert result.metrics["knn_k"] in (1, 3, 5, 9, 15, 25) and result.history == []
    assert result.metrics["epochs"] == 0 and result.metrics["updates"] == 0  # nothing trained
    assert result.metrics["test_accuracy"] > 0.5  # 10 classes


def test_a_saved_knn_classifier_reloads_with_its_votes(digits_run, tmp_path):
    out = tmp_path / "knn"
    result = autoencoders.classify(digits_run.dir, n_labels=50, method="knn", out=out, **FAST)
    rows = autoencoders.reconstruct(digits_run.dir, "digits", "test")[0]
    x = torch.from_numpy(rows)
    with torch.no_grad():
        expected = on_cpu(result.model).eval()(x)  # on the CPU, as the loaded classifier
        assert torch.equal(autoencoders.load(out)(x), expected)
        # a classifier saved before votes were weighted has no temperature: equal votes
        config = json.loads((out / "classifier.json").read_text())
        del config["knn"]["temperature"]
        (out / "classifier.json").write_text(json.dumps(config))
        assert autoencoders.load(out).head.temperature is None


def test_semi_supervised_training_learns_the_unlabelled_rows(digits_run, ds):
    """From random weights, only the semi-supervised loss teaches the decoder the unlabelled rows."""
    rows = labelled_subset(np.unique(ds.y_train.numpy(), return_inverse=True)[1], None, 0, n_labels=20)
    unlabelled = np.setdiff1d(np.arange(len(ds.x_train)), rows)
    x = ds.x_train[unlabelled]

    def recon(autoencoder):
        autoencoder = on_cpu(autoencoder)  # where the rows are
        with torch.no_grad():
            return float(autoencoder.eval().nll(autoencoder(x).logits, x).mean())

    start = copy.deepcopy(digits_run.model)
    torch.manual_seed(digits_run.config.train.seed)  # the weights from_scratch starts from
    start.reset_parameters()
    semi = _train(digits_run, ds, method="semi", n_labels=20, epochs=5, from_scratch=True)
    assert recon(semi.model.autoencoder) < 0.8 * recon(start)
    assert {"train_recon", "train_ce", "val_ce", "val_accuracy"} <= set(semi.history[0])
    assert semi.history[-1]["train_recon"] < semi.history[0]["train_recon"]


def test_combinator_starts_as_the_published_initialisation():
    g = Combinator(3)
    z, u = torch.randn(4, 3), torch.randn(4, 3)
    # a2 = a7 = 1, the rest 0: μ = 0 and v = 0, so the first estimate ignores z̃
    assert torch.equal(g(z, u), torch.zeros(4, 3))


def _paper_costs(ladder: Ladder, x_unlabelled, x_labelled, y) -> dict:
    """The ladder's training cost written as the paper's formulas read, one operation at a time:
    what the network's fused passes must compute."""
    n, x = len(y), torch.cat([x_labelled, x_unlabelled])

    def bn(h):
        var, mean = torch.var_mean(h, 0, unbiased=False)
        return (h - mean) / torch.sqrt(var + 1e-5), mean, torch.sqrt(var + 1e-5)

    def encode(noise):
        h = x + noise * torch.randn_like(x)
        zs, stats = [h], []
        for i, linear in enumerate(ladder.encoder):
            (z_l, _, _), (z_u, mean, std) = bn(linear(h)[:n]), bn(linear(h)[n:])
            z = torch.cat([z_l, z_u]) + noise * torch.randn_like(torch.cat([z_l, z_u]))
            zs.append(z)
            stats.append((mean, std))
            h = ladder.gamma[i] * (z + ladder.beta[i])
            h = F.relu(h) if i < len(ladder.encoder) - 1 else h
        return zs, stats, h

    noisy, _, logits = encode(ladder.noise)
    clean, stats, _ = encode(0.0)
    top, denoise, z_hat = len(ladder.encoder), 0.0, None
    for i in range(top, -1, -1):
        u = bn(torch.softmax(logits[n:], 1) if i == top else ladder.decoder[i](z_hat))[0]
        a = ladder.combinators[i].a
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        z_hat = (noisy[i][n:] - mu) * v + mu
        z_bn = (z_hat - stats[i - 1][0]) / stats[i - 1][1] if i else z_hat
        cost = (z_bn - clean[i][n:]).pow(2).sum(1).mean() / ladder.widths[i]
        denoise = denoise + ladder.denoise_weights[i] * cost
    ce = F.cross_entropy(logits[:n], y)
    return {"loss": ce + denoise, "ce": ce, "denoise": denoise}


@pytest.mark.parametrize("unlabelled, labelled", [(72, 24), (1, 1)])  # one row: an epoch's last batch
def test_ladder_costs_and_gradients_are_the_papers_formulas(ds, unlabelled, labelled):
    torch.manual_seed(0)
    ladder = Ladder([64, 32, 16, 10], noise=0.3).train()
    with torch.no_grad():  # combinators away from their start, where μ = v = 0 hides most terms
        for g in ladder.combinators:
            g.a.normal_()
    x, y = ds.x_train[: unlabelled + labelled], ds.y_train[:labelled].long()
    got, want = {}, {}
    for costs, out in ((ladder.costs, got), (lambda *a: _paper_costs(ladder, *a), want)):
        torch.manual_seed(1)  # the same noise drawn in the same order
        values = costs(x[labelled:], x[:labelled], y)
        ladder.zero_grad()
        values["loss"].backward()
        out.update({k: v.detach() for k, v in values.items()})
        out.update({name: p.grad.clone() for name, p in ladder.named_parameters()})
    assert got.keys() == want.keys()
    # equal to float32 rounding relative to each tensor's largest value, which digits' constant
    # pixels (normalised by sqrt(1e-5)) amplify to 2e-5; a term or a path of the gradient missed
    # would differ by far more
    for name in got:
        assert (got[name] - want[name]).abs().max() <= 1e-4 * want[name].abs().max(), name


def test_the_ladder_trains_on_full_batches_only(digits_run, ds, monkeypatch):
    """As Rasmus et al.'s: its batch norm over an epoch's last two rows (digits' 1,294 in batches of
    646) had blown its weights up, test accuracy 0.98 → 0.30."""
    from autoencoders.training import loop

    n = len(ds.x_train)
    batch = (n - 2) // 2  # two full batches, then 2 or 3 rows
    sizes: list[int] = []
    real = loop.epoch_batches

    def spied(data, batch_size, generator, *args):
        for b in real(data, batch_size, generator, *args):
            if generator is not None:  # training's batches, not validation's
                sizes.append(len(b[0]))
            yield b

    monkeypatch.setattr(loop, "epoch_batches", spied)
    cfg = copy.deepcopy(digits_run.config.train)
    cfg.quiet, cfg.precision, cfg.batch_size = True, "fp32", batch
    result = train_classifier(digits_run.model, ds, cfg, FewLabels(n_labels=50, method="ladder", epochs=2))
    assert set(sizes) == {batch} and len(sizes) == 2 * 2  # the few rows left over are left out
    assert result.metrics["updates"] == 2 * 2


def test_ladder_normalises_labelled_rows_apart(ds):
    torch.manual_seed(0)
    ladder = Ladder([64, 32, 10], noise=0.0).train()  # no noise: the costs are deterministic
    x, y = ds.x_train[:64], ds.y_train[:16].long()
    usual, odd = copy.deepcopy(ladder), copy.deepcopy(ladder)
    expected = usual.costs(x[16:], x[:16], y)
    # labelled rows unlike the data (negatives) leave the unlabelled rows' normalisation alone
    got = odd.costs(x[16:], 1 - x[:16], y)
    assert torch.allclose(got["denoise"], expected["denoise"])
    assert not torch.isclose(got["ce"], expected["ce"])
    buffers = dict(usual.named_buffers())
    for name, value in odd.named_buffers():  # the running statistics are the unlabelled rows'
        assert torch.equal(value, buffers[name])
    assert not torch.equal(buffers["running_mean0"], torch.zeros(32))


def test_ladder_costs_train_and_reload(digits_run, ds, tmp_path):
    torch.manual_seed(0)
    ladder = Ladder([64, 32, 10], noise=0.3)
    x = ds.x_train[:64]
    parts = ladder.train().costs(x[16:], x[:16], ds.y_train[:16].long())
    assert set(parts) == {"loss", "ce", "denoise"} and torch.isfinite(parts["loss"])
    assert parts["loss"].item() == pytest.approx((parts["ce"] + parts["denoise"]).item())
    ladder.eval()
    assert torch.equal(ladder(x), ladder(x))  # evaluation: the clean path, running statistics

    out = tmp_path / "ladder"
    result = autoencoders.classify(
        digits_run.dir, n_labels=50, method="ladder", out=out, epochs=15, lr=2e-3, **FAST
    )
    assert result.metrics["ladder_pretrained"] and result.metrics["ladder_widths"] == [64, 32, 8, 10]
    assert result.history[-1]["train_denoise"] < result.history[0]["train_denoise"]
    assert result.metrics["test_accuracy"] > 0.6
    loaded = autoencoders.load(out)
    assert isinstance(loaded, Ladder) and not loaded.training
    rows = autoencoders.reconstruct(digits_run.dir, "digits", "test")[0]
    with torch.no_grad():
        expected = on_cpu(result.model).eval()(torch.from_numpy(rows))  # on the CPU, as the loaded ladder
        assert torch.equal(loaded(torch.from_numpy(rows)), expected)
    predicted, _, _ = autoencoders.predict(out, "digits", split="test", device="cpu")
    assert (predicted == expected.argmax(1).numpy()).all()


def test_cli_methods_and_their_errors(digits_run, tmp_path, capsys):
    out = tmp_path / "knn"
    assert cli_run(["classify", str(digits_run.dir), "--method", "knn", "--n-labels", "30", "--quiet",
                    "--out", str(out)]) == 0  # fmt: skip
    picked = re.search(
        r"\(knn, k = (\d+) picked on the validation labels\) with 30 labelled", capsys.readouterr().out
    )
    assert picked and int(picked[1]) == json.loads((out / "metrics.json").read_text())["knn_k"]
    predicted, _, _ = autoencoders.predict(out, "digits", split="test")
    assert len(predicted) == autoencoders.load_dataset(digits_run.config.data).x_test.shape[0]
    with pytest.raises(SystemExit) as exc:
        cli_run(["classify", str(digits_run.dir), "--n-labels", "30", "--labels-fraction", "0.1"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(UserError, match="fewer than the 10 classes"):
        cli_run(["classify", str(digits_run.dir), "--n-labels", "5", "--quiet", "--out", str(tmp_path / "x")])
    with pytest.raises(UserError, match="give --method frozen too"):
        cli_run(["classify", str(digits_run.dir), "--unfreeze-epochs", "2", "--out", str(tmp_path / "y")])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_ladder_starts_from_a_vaes_means_and_refuses_a_conv_encoder(tmp_path, monkeypatch):
    vae = autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 8], epochs=1, out=str(tmp_path / "v"), **FAST
    )
    started = []  # the ladder's hidden weights as classify started it, before any training
    init_from = Ladder.init_from

    def record(ladder, weights):
        init_from(ladder, weights)
        started.append([layer.weight.detach().cpu().clone() for layer in list(ladder.encoder)[:-1]])

    monkeypatch.setattr(Ladder, "init_from", record)
    result = autoencoders.classify(
        vae.dir, n_labels=30, method="ladder", epochs=1, out=tmp_path / "l", **FAST
    )
    assert result.metrics["ladder_pretrained"] and result.metrics["ladder_widths"] == [64, 32, 8, 10]
    model = on_cpu(vae.model).eval()
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(0))
    first, code = started[0]
    assert torch.equal(first, model.encoder[0].weight)
    with torch.no_grad():  # the code layer started at the weights that give the VAE's posterior means
        hidden = model.encoder_acts[0](model.encoder[0](x))
        torch.testing.assert_close(hidden @ code.T + model.encoder[1].bias[:8], model.encode(x))

    conv = autoencoders.train(
        data="digits", model="conv", channels=[4], layers=[64, 8], epochs=1, out=str(tmp_path / "c"), **FAST
    )
    assert on_cpu(conv.model).dense_weights() is None
    with pytest.raises(UserError, match="a 'conv' encoder cannot start it; use method semi"):
        autoencoders.classify(conv.dir, n_labels=30, method="ladder", epochs=1, out=tmp_path / "cl", **FAST)
    assert not (tmp_path / "cl").exists()


def test_a_classifiers_default_directory_names_what_sets_it_apart():
    assert FewLabels(n_labels=20).name() == "classifier-20labels"
    assert FewLabels(labels_fraction=0.1, method="ladder", seed=3).name() == "classifier-0.1-ladder-seed3"
    assert FewLabels(method="frozen", unfreeze_epochs=5, from_scratch=True).name() == (
        "classifier-1-scratch-frozen-unfrozen5"
    )
