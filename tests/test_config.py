"""Config: TOML files with flag overrides, validation, JSON round trip."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

import autoencoders
from autoencoders import Config, UserError
from autoencoders.commands import train_config
from autoencoders.config import all_sections, load_toml
from autoencoders.io import rundir
from autoencoders.parser import build_parser
from autoencoders.run import as_config


def _cfg(*argv: str) -> Config:
    return train_config(build_parser().parse_args(["train", *argv]))


def test_flags_only():
    cfg = _cfg("--data", "npy:/x.npy", "--layers", "6,4,2", "--lr", "0.01", "--tied", "--quiet")
    assert cfg.data.data == "npy:/x.npy"
    assert cfg.model.layers == [6, 4, 2]
    assert cfg.model.tied is True and cfg.train.quiet is True
    assert cfg.train.lr == 0.01
    assert cfg.train.epochs == 100  # untouched defaults stay
    assert cfg.out is None


def test_toml_sections_and_flat_keys_with_flags_overriding(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text(
        'out = "runs/from-toml"\n'
        "batch-size = 32\n"  # flat key, dashed spelling
        "\n"
        "[data]\n"
        'data = "csv:/data/t.csv"\n'
        'label_column = "label"\n'
        "\n"
        "[model]\n"
        "layers = [10, 5, 2]\n"
        'activation = "tanh"\n'
        "tied = true\n"
        "\n"
        "[train]\n"
        "lr = 0.005\n"
        "epochs = 7\n"
    )
    cfg = _cfg("--config", str(toml), "--lr", "0.1", "--no-tied", "--out", "elsewhere")
    assert cfg.data.data == "csv:/data/t.csv" and cfg.data.label_column == "label"
    assert cfg.model.layers == [10, 5, 2] and cfg.model.activation == "tanh"
    assert cfg.train.batch_size == 32 and cfg.train.epochs == 7
    # flags win over the file
    assert cfg.train.lr == 0.1
    assert cfg.model.tied is False
    assert cfg.out == "elsewhere"
    # without flags the file's values hold
    plain = _cfg("--config", str(toml))
    assert plain.train.lr == 0.005 and plain.model.tied is True and plain.out == "runs/from-toml"


def test_toml_through_the_python_api(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("[train]\nepochs = 3\n")
    cfg = as_config(toml, lr=0.5)
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("epoch = 1\n", r"unknown key 'epoch' in .*bad.toml \(did you mean 'epochs'\?\)"),
        (
            "[model]\ncolour = 1\n",
            r"unknown key\(s\) 'colour' in \[model\]; valid: activation, code-activation",
        ),
        (
            "[train]\nbatch-sise = 1\n",
            r"unknown key\(s\) 'batch-sise' \(did you mean 'batch-size'\?\) in \[train\]",
        ),
        ("[train]\nlayers = [4, 2]\n", r"unknown key\(s\) 'layers' \(it belongs in \[model\]\) in \[train\]"),
        ("[model\n", "not valid TOML"),
    ],
    ids=["flat", "section", "misspelt", "wrong-section", "syntax"],
)
def test_bad_toml_is_a_user_error(tmp_path, text, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    with pytest.raises(UserError, match=message):
        _cfg("--config", str(toml))


def test_missing_toml_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_toml(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"activation": "swish"}, "--activation must be one of"),
        ({"loss": "l1"}, "--loss must be one of"),
        ({"corruption": "blur"}, "--corruption must be one of"),
        ({"optimizer": "lbfgs"}, "--optimizer must be one of"),
        ({"layers": [64]}, "at least two widths, the input's and the code's"),
        ({"layers": [64, 0, 8]}, "--layers 64,0,8: every width must be at least 1"),
        ({"loss": "bce", "output_activation": "linear"}, "needs --output-activation sigmoid"),
        ({"lr": 0.0}, "--lr must be > 0, got 0.0"),
        ({"batch_size": -1}, "--batch-size must be >= 1, got -1"),
        ({"seed": -1}, r"--seed must be in \[0, 4294967295\], got -1"),
        ({"seed": 2**64}, r"--seed must be in \[0, 4294967295\], got 18446744073709551616"),
        ({"split_seed": 2**32}, r"--split-seed must be in \[0, 4294967295\]"),
        ({"sparsity_target": 1.0}, r"--sparsity-target must be in \(0, 1\)"),
        ({"momentum": 1.0}, r"--momentum must be in \[0, 1\)"),
        ({"epochs": -1}, "must be >= 0"),
        ({"val_fraction": 1.0}, r"--val-fraction must be in \[0, 1\)"),
        ({"test_fraction": -0.1}, r"--test-fraction must be in \[0, 1\)"),
        ({"corruption": "masking", "noise": 1.5}, r"--noise must be in \[0, 1\] for masking corruption"),
        ({"corruption": "gaussian", "noise": 11}, r"--noise must be in \[0, 10\] for gaussian"),
        ({"activation": "rellu"}, "did you mean 'relu'"),
        ({"no_such_option": 1}, "unknown option 'no_such_option'"),
    ],
)
def test_invalid_values_are_user_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        Config().replace(**overrides)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[model]\nactivation = "swish"\n', "--activation must be one of .*not 'swish'"),
        ('[train]\nlr = "fast"\n', "lr"),  # a string where a number belongs
    ],
)
def test_bad_toml_values_are_user_errors(tmp_path, text, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    with pytest.raises(UserError, match=message):
        _cfg("--config", str(toml))


def test_invalid_choice_flag_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", "--activation", "swish"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_json_round_trip(tmp_path):
    cfg = Config().replace(
        data="npy:/x.npy",
        labels="/y.npy",
        layers=[6, 4, 2],
        tied=True,
        corruption="gaussian",
        noise=0.2,
        lr=0.01,
        epochs=5,
        patience=2,
        out="somewhere",
    )
    rundir.write_config(tmp_path, cfg.to_dict())
    back = Config.load_json(tmp_path / "config.json")
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_unknown_sections_and_keeps_defaults():
    with pytest.raises(UserError, match="unknown config section"):
        Config.from_dict({"optim": {}})
    cfg = Config.from_dict({"train": {"epochs": 4}})
    assert cfg.train.epochs == 4 and cfg.train.lr == Config().train.lr


def test_a_config_dict_may_be_flat_as_a_toml_file_may():
    from autoencoders.run import as_config

    flat = as_config({"layers": [64, 16], "epochs": 3, "out": "x"})
    assert (flat.model.layers, flat.train.epochs, flat.out) == ([64, 16], 3, "x")
    assert as_config({"model": {"layers": [64, 16]}, "epochs": 3, "out": "x"}) == flat
    with pytest.raises(UserError, match=r"unknown key 'epoch' in the config dict \(did you mean 'epochs'"):
        autoencoders.train(config={"epoch": 1})
    with pytest.raises(UserError, match=r"sets 'epochs' twice, at the top and in \[train\]"):
        as_config({"epochs": 1, "train": {"epochs": 2}})


@pytest.mark.parametrize(
    "other, ours",
    [("learning_rate", "lr"), ("n_epochs", "epochs"), ("random_state", "seed"), ("hidden_dims", "layers")],
)
def test_an_option_named_as_another_library_names_it_is_pointed_to_its_name_here(other, ours):
    with pytest.raises(UserError, match=rf"^unknown option '{other}' \(did you mean '{ours}'\?\)$"):
        autoencoders.train(data="digits", **{other: 1})


def test_a_typo_of_an_own_option_is_pointed_to_it_before_another_librarys_name():
    from autoencoders.fields import nearest

    assert nearest("--scheduler", ["--schedule", "--lr-decay"]) == "--schedule"


def test_replace_returns_a_validated_copy():
    base = Config()
    new = base.replace(lr=0.5, layers=["8", "2"])
    assert base.train.lr == 2e-3 and base.model.layers is None
    assert new.train.lr == 0.5 and new.model.layers == [8, 2]


def test_flat_names_are_unique_across_sections():
    cfg = Config()
    flat = cfg.flat()
    n_fields = sum(len(vars(getattr(cfg, s))) for s in ("data", "model", "pretrain", "train"))
    assert len(flat) == n_fields


# ---------------------------------------------------------------- model kinds' own sections


def test_kind_sections_round_trip_and_are_saved_only_for_their_kind():
    cfg = Config().replace(model="vae", beta=0.5, kl_warmup=3)
    d = cfg.to_dict()
    assert d["vae"]["beta"] == 0.5 and "conv" not in d
    assert Config.from_dict(d).to_dict() == d
    assert "vae" not in Config().to_dict()  # dense has no own section
    # switching kind drops the old kind's options
    assert Config.from_dict(d).replace(model="conv", channels=[8]).to_dict()["conv"]["channels"] == [8]


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        (
            {"model": {"model": "dense"}, "vae": {"beta": 2.0}},
            r"--beta \(section \[vae\]\): options of --model vae",
        ),
        (
            {"model": {"model": "vae"}, "vae": {"betta": 2.0}},
            r"unknown key\(s\) 'betta' \(did you mean 'beta'\?\) in \[vae\]",
        ),
        ({"model": {"model": "transformer"}}, "--model must be one of dense, conv, vae, aae"),
        ({"model": {"model": "conv"}, "conv": {"channels": []}}, "--channels needs one or more"),
        ({"model": {"model": "vae"}, "vae": {"vae_scale": "var"}}, "--vae-scale must be one of logvar, std"),
    ],
)
def test_bad_kind_settings_are_refused(nested, message):
    with pytest.raises(UserError, match=message):
        Config.from_dict(nested)


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        ({"model": {"model": "conv"}, "conv": {"channels": [32, "a"]}}, "--channels must be whole numbers"),
        ({"model": {"model": "conv"}, "conv": {"channels": [True]}}, "--channels must be whole numbers"),
        ({"model": {"layers": [64, 8.5]}}, "--layers must be whole numbers; item 2 is 8.5"),
        ({"data": {"image_shape": [1, "8x", 8]}}, "--image-shape must be whole numbers; item 2 is '8x'"),
        ({"model": {"model": "vae"}, "vae": {"beta": float("nan")}}, "--beta must be a finite number"),
        ({"train": {"lr": float("inf")}}, "--lr must be a finite number"),
        ({"model": {"model": "vae"}, "vae": {"decoder_std": "inf"}}, "--decoder-std must be 'learned' or a"),
    ],
)
def test_list_elements_and_numbers_are_checked(nested, message):
    with pytest.raises(UserError, match=message):
        Config.from_dict(nested)


def test_a_printed_config_serves_another_kind_and_a_key_set_twice_is_refused(tmp_path, capsys):
    from autoencoders.cli import main

    with pytest.raises(SystemExit) as done:
        main(["train", "--model", "vae", "--print-config"])
    printed = capsys.readouterr().out
    assert done.value.code == 0 and "[vae]" in printed
    (tmp_path / "v.toml").write_text(printed)  # [vae] with its defaults
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "v.toml"), "--model", "dense"])
    assert train_config(args).model.model == "dense"  # the defaults set nothing: no refusal
    # a kind's option given for another kind is refused, even at its default value
    for argv in (["--beta", "1"], ["--config", str(tmp_path / "v.toml"), "--model", "dense", "--beta", "2"]):
        with pytest.raises(UserError, match=r"^--beta \(section \[vae\]\): options of --model vae"):
            train_config(build_parser().parse_args(["train", *argv]))
    (tmp_path / "d.toml").write_text("epochs = 2\n[train]\nepochs = 5\n")
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "d.toml")])
    with pytest.raises(UserError, match=r"d.toml sets 'epochs' twice, at the top and in \[train\]; keep one"):
        train_config(args)


def test_a_kind_option_for_another_kind_is_refused_on_the_command_line(tmp_path):
    args = build_parser().parse_args(["train", "--beta", "2"])
    with pytest.raises(
        UserError, match=r"--beta \(section \[vae\]\): options of --model vae, and this run's model is dense"
    ):
        train_config(args)
    args = build_parser().parse_args(["train", "--model", "vae", "--beta", "2", "--kl-warmup", "4"])
    cfg = train_config(args)
    assert (cfg.kind_options.beta, cfg.kind_options.kl_warmup) == (2.0, 4)


def test_toml_with_a_kind_section(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nmodel = "conv"\nlayers = [64, 8]\n[conv]\nchannels = [4, 8]\nkernel-size = 5\n')
    cfg = Config.from_dict(load_toml(path))
    assert cfg.kind_options.channels == [4, 8] and cfg.kind_options.kernel_size == 5


def test_help_lists_every_kind_and_its_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert "{dense,conv,vae,aae}" in text
    flags = ["--channels", "--kernel-size", "--beta", "--kl-warmup", "--vae-scale", "--iw-samples"]
    assert all(flag in text for flag in [*flags, "--resume"])


def test_print_config_round_trips_through_toml(tmp_path, capsys):
    from autoencoders.cli import run as cli_run

    argv = [
        "train",
        "--model",
        "conv",
        "--channels",
        "8,16",
        "--layers",
        "64,8",
        "--sparsity",
        "l1",
        "--lr",
        "0.01",
        "--out",
        str(tmp_path / "the run"),
    ]
    assert cli_run([*argv, "--print-config"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "printed.toml"
    path.write_text(text)
    again = Config.from_dict(load_toml(path))
    assert again.to_dict() == train_config(build_parser().parse_args(argv)).to_dict()
    assert again.out == str(tmp_path / "the run")
    assert not (tmp_path / "the run").exists()  # printing trains nothing


def test_printed_config_keeps_names_beyond_the_basic_multilingual_plane():
    cfg = Config().replace(columns=["size 😀", "tab\there", "del\x7f"], out="rüns/x")
    again = Config.from_dict(tomllib.loads(cfg.to_toml()))
    assert again.data.columns == ["size 😀", "tab\there", "del\x7f"] and again.out == "rüns/x"


def test_print_config_of_a_run_to_resume_prints_the_settings_it_resumes_with(digits_run, tmp_path, capsys):
    import json
    import shutil

    from autoencoders.cli import run as cli_run

    moved = tmp_path / "moved"  # an incomplete run, moved since it stopped
    shutil.copytree(digits_run.dir, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    (moved / "manifest.json").write_text(json.dumps(manifest | {"completed": False}))
    assert cli_run(["train", "--resume", str(moved), "--save-every", "3", "--print-config"]) == 0
    printed = Config.from_dict(tomllib.loads(capsys.readouterr().out))
    own = Config.load_json(moved / "config.json")
    assert printed.out == str(moved) and printed.train.save_every == 3
    assert printed.replace(out=own.out, save_every=own.train.save_every).to_dict() == own.to_dict()
    with pytest.raises(UserError, match="finished training; there is nothing to resume"):  # as --resume says
        cli_run(["train", "--resume", str(digits_run.dir), "--print-config"])


def test_settings_that_change_nothing_are_named_and_warned_about_in_one_line(tmp_path, capsys):
    from autoencoders.cli import main

    assert Config().inert_settings() == []
    assert (
        Config().replace(corruption="masking", noise=0.5, sparsity="l1", sparsity_weight=1).inert_settings()
        == []
    )
    assert Config().replace(contractive=0.1, contractive_projections=1).inert_settings() == []
    assert Config().replace(contractive=0.1, contractive_projections=1, layers=[64, 8]).inert_settings() == [
        "--contractive-projections 1 estimates nothing here: an encoder of one dense layer has its "
        "contractive penalty in closed form, exact and cheaper; leave it out"
    ]
    said = (
        Config()
        .replace(noise=0.5, sparsity_weight=1, momentum=0.5, contractive_projections=2)
        .inert_settings()
    )
    assert said == [
        "--noise 0.5 has no effect without --corruption: the inputs stay clean",
        "--sparsity-weight shapes a sparsity penalty, and there is none: give --sparsity too",
        "--contractive-projections 2 estimates a contractive penalty, and there is none: give "
        "--contractive too",
        "--momentum 0.5 is SGD's; with --optimizer adam it does nothing",
    ]
    winners = Config().replace(lifetime_sparsity=0.05, batch_size=1, layers=[64, 8])
    assert winners.inert_settings() == [
        "--lifetime-sparsity 0.05 keeps every activation of a batch of 1: no sparsity; use a larger "
        "--batch-size"
    ]
    assert Config().replace(lifetime_sparsity=0.05, batch_size=2, layers=[64, 8]).inert_settings() == []
    unused = Config().replace(
        sparsity="l1", sparsity_target=0.1, pretrain_epochs=5, schedule="phased", epochs=0
    )
    assert unused.inert_settings() == [
        "--sparsity-target 0.1 is what kl and squared sparsity pull mean activations to; l1 has no target: "
        "leave it out",
        "--pretrain-epochs, --schedule shape greedy pretraining, and there is none: add --pretrain greedy",
        "--epochs 0 and no pretraining leave the model untrained, with its random weights",
    ]
    later = Config().replace(model="vae", kl_warmup=5, epochs=2, val_fraction=0.0, patience=3, keep="last")
    assert later.replace(data="fashion-mnist", test_fraction=0.5).inert_settings() == [
        "--kl-warmup 5 is longer than --epochs 2: the KL weight never reaches --beta, and the model is "
        "trained with less of it",
        "--test-fraction 0.5 splits data without a test split of its own; fashion-mnist data has one, and "
        "it is the test split",
        "--patience judges epochs on the validation split, and --val-fraction 0 leaves none: every "
        "epoch runs and the last one's weights are kept",
    ]  # --keep last asks for what it does without them
    assert Config().replace(pretrain_epochs=5, compare=False).inert_settings() == [
        "--pretrain-epochs, --no-compare shape greedy pretraining, and there is none: add --pretrain greedy"
    ]
    assert Config().replace(model="aae", components=5).inert_settings() == [
        "--components 5 counts the mixture prior's Gaussians, and the prior is one Gaussian: give --prior "
        "mixture too"
    ]
    assert Config().replace(model="aae", prior="mixture", components=5).inert_settings() == []
    k_sparse = dict(layers=[64, 48], top_k=10, top_k_start=40, epochs=2)
    assert Config().replace(**k_sparse | dict(top_k_warmup=5)).inert_settings() == [
        "--top-k-warmup 5 is too long for --epochs 2: k is 34 in the last epoch, not --top-k 10, which "
        "evaluation and use take"
    ]
    assert Config().replace(**k_sparse | dict(top_k_warmup=1)).inert_settings() == []  # its second epoch at k
    nothing_falls = dict(top_k_start=10, top_k_warmup=3)
    assert Config().replace(**k_sparse | nothing_falls).inert_settings() == []
    rounded = dict(top_k_start=11, top_k_warmup=3, epochs=3)  # 10.33 in the last epoch: k = 10
    assert Config().replace(**k_sparse | rounded).inert_settings() == []
    greedy_k = Config().replace(
        **k_sparse | dict(top_k_warmup=3, epochs=5, pretrain="greedy", pretrain_epochs=2)
    )
    assert greedy_k.inert_settings() == [
        "--top-k-warmup 3 is too long for --pretrain-epochs 2: k is 30 in the last epoch, not --top-k 10, "
        "which evaluation and use take"
    ]
    assert Config().replace(pretrain="greedy", pretrain_epochs=0).inert_settings() == [
        "--pretrain greedy with --pretrain-epochs 0 pretrains nothing: the stack starts from random weights "
        "and nothing is compared; give --pretrain-epochs 1 or more"
    ]
    aae = Config().replace(model="aae", layers=[64, 32, 8])
    assert aae.inert_settings() == []
    assert aae.replace(code_activation="tanh", sparsity="l1", prior="mixture").inert_settings() == [
        "--code-activation tanh keeps the codes in (-1, 1), where the AAE's mixture prior spreads over all "
        "numbers: they can never match it; use --code-activation linear",
        "--sparsity l1 pulls the code values towards 0, where the AAE's mixture prior spreads them: it works "
        "against the prior; leave it out, or use --model dense",
    ]
    greedy = dict(pretrain="greedy", epochs=0)  # pretraining only
    used = Config().replace(sparsity="squared", sparsity_target=0.1, code_activation="sigmoid", **greedy)
    assert used.inert_settings() == []
    with pytest.raises(SystemExit) as done:
        main(["train", "--noise", "0.5", "--epochs", "10", "--quiet", "--out", str(tmp_path / "run")])
    assert done.value.code == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        "autoencoders: warning: --noise 0.5 has no effect without --corruption: the inputs stay clean"
    ]


def test_numpy_numbers_and_arrays_are_options_as_python_s_are():
    """As a grid search over ``np.arange`` or a width array passes them; stored as Python numbers."""
    import json

    import numpy as np

    cfg = Config().replace(
        epochs=np.int64(3), lr=np.float32(0.5), layers=np.array([64, 8]), classes=np.array(["a"])
    )
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.layers, cfg.data.classes) == (3, 0.5, [64, 8], ["a"])
    assert type(cfg.train.epochs) is int and type(cfg.train.lr) is float and type(cfg.model.layers[0]) is int
    json.dumps(cfg.to_dict())  # config.json takes them
    with pytest.raises(UserError, match="--epochs must be a whole number, not 2.5"):
        Config().replace(epochs=np.float64(2.5))
    assert Config().replace(layers=[64, 8.0, "4"]).model.layers == [64, 8, 4]  # whole, as read or typed
    for bad, shown in (([64, 8.5], "8.5"), ([64, True], "True"), ([64, "x"], "'x'")):
        with pytest.raises(UserError, match=rf"^--layers must be whole numbers; item 2 is {shown}$"):
            Config().replace(layers=bad)


def test_help_of_train_lists_every_option_with_its_default():
    doc = autoencoders.train.__doc__
    for section in all_sections().values():
        for f in dataclasses.fields(section):
            assert f"\n        {f.name} (default " in doc, f.name
    assert "        epochs (default 100): epochs of end-to-end training" in doc
