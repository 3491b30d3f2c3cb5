"""The optimizers take torch's steps to the bit, save and load torch's layout, and load no compiler."""

import os
import subprocess
import sys

import pytest
import torch

from autoencoders.training.optimizers import SGD, Adam

SETTINGS = {
    "adam fused": (Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-3, fused=True)),
    # as on a GPU whose steps CUDA graphs replay: the rate a tensor, the step counts with the weights
    "adam capturable": (
        Adam,
        torch.optim.Adam,
        dict(lr=torch.tensor(1e-2), weight_decay=1e-3, fused=True, capturable=True),
    ),
    "adam": (Adam, torch.optim.Adam, dict(lr=0.05)),
    "adam betas": (Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-6)),
    "sgd momentum": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
    "sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
}


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _train(model: torch.nn.Module, optimizer, steps: int, start: int = 0) -> None:
    for i in range(start, start + steps):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(i))
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize("name", SETTINGS)
def test_each_step_is_torchs_to_the_bit(name):
    ours, theirs, kw = SETTINGS[name]
    a, b = _model(), _model()
    _train(a, ours(a.parameters(), **kw), 20)
    _train(b, theirs(b.parameters(), **kw), 20)
    for p, q, start in zip(a.parameters(), b.parameters(), _model().parameters(), strict=True):
        assert torch.equal(p, q) and not torch.equal(p, start)  # both moved, the same way


@pytest.mark.parametrize("name", SETTINGS)
def test_a_state_saved_by_either_resumes_in_the_other(name):
    """States saved by torch's optimizers (earlier versions) load in ours, and ours in torch's; the
    steps after loading match an optimizer that never stopped."""
    ours, theirs, kw = SETTINGS[name]
    unbroken = _model()
    _train(unbroken, theirs(unbroken.parameters(), **kw), 12)
    for first, second in ((theirs, ours), (ours, theirs)):
        model = _model()
        before = first(model.parameters(), **kw)
        _train(model, before, 7)
        after = second(model.parameters(), **kw)
        after.load_state_dict(before.state_dict())
        _train(model, after, 5, start=7)
        for p, q in zip(model.parameters(), unbroken.parameters(), strict=True):
            assert torch.equal(p, q), (first, second)


def test_a_rate_held_as_a_tensor_takes_the_saved_rate_in_place():
    model = _model()
    saved = Adam(model.parameters(), lr=0.02)
    _train(model, saved, 3)
    rate = torch.tensor(0.5)
    resumed = Adam(model.parameters(), lr=rate, fused=True, capturable=True)
    resumed.load_state_dict(saved.state_dict())
    assert resumed.param_groups[0]["lr"] is rate and rate.item() == pytest.approx(0.02)
    assert resumed.param_groups[0]["fused"] and resumed.param_groups[0]["capturable"]  # as it was built
    assert all(s["step"].item() == 3 for s in resumed.state.values())


def test_a_state_for_other_parameters_is_refused():
    saved = Adam(_model().parameters())
    with pytest.raises(ValueError, match="other parameters"):
        Adam(list(_model().parameters())[:2]).load_state_dict(saved.state_dict())


def test_zero_grad_drops_the_gradients_and_an_update_skips_parameters_without_one():
    model = _model()
    optimizer = Adam(model.parameters(), lr=0.1)
    _train(model, optimizer, 1)
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    frozen = [p.detach().clone() for p in model[0].parameters()]
    model[2](torch.randn(4, 5)).sum().backward()  # the last layer alone gets gradients
    optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(model[0].parameters(), frozen, strict=True))


@pytest.mark.slow  # a process of its own
def test_training_and_its_evaluation_load_no_compiler(tmp_path):
    """torch's optimizers import its compiler stack when built (over a second on a 2-core CPU):
    a training command, its linear probes and an estimator's fit build none of them."""
    script = "\n".join(
        [
            "import sys, autoencoders",
            "from sklearn.datasets import load_digits",
            "from autoencoders.sklearn import AutoencoderTransformer",
            f"out = {str(tmp_path / 'r')!r}",
            "autoencoders.train(data='digits', layers=[64, 8], epochs=1, out=out, quiet=True)",
            "AutoencoderTransformer(layers=[16, 4], epochs=1, random_state=0).fit(load_digits().data[:100])",
            "print('torch._dynamo' in sys.modules)",
        ]
    )
    env = {**os.environ, "AUTOENCODERS_CACHE": str(tmp_path / "cache")}  # the baselines computed too
    said = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert said.stdout.split()[-1] == "False"
