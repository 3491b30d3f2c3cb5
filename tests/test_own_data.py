"""Users' own data in Python: data frames, arrays and tensors through train, encode, score and cluster."""

from __future__ import annotations

import re
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DEVICE, FAST, ctrl_c_at_batch

import autoencoders
from autoencoders.config import DataConfig
from autoencoders.data.classes import UNLABELLED
from autoencoders.errors import DataWarning, UserError
from autoencoders.figures.report import write_report
from autoencoders.figures.run_figures import visualize
from autoencoders.sklearn import AutoencoderClassifier


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    columns = [f"pixel_{i}" for i in range(64)]
    return pd.DataFrame(digits.data, columns=columns), pd.Series(digits.target, name="digit")


def test_a_data_frame_trains_and_every_command_takes_frames_arrays_and_tensors(frame, tmp_path):
    x, y = frame
    run = autoencoders.train(
        data=x, labels=y, layers=[64, 32, 8], epochs=3, out=str(tmp_path / "run"), **FAST
    )
    assert run.config.data.data.startswith("npy:") and "linear_probe_accuracy" in run.metrics  # labels used
    again = autoencoders.train(data=x.to_numpy(), labels=y.to_numpy(), layers=[64, 32, 8], epochs=3,
                               out=str(tmp_path / "again"), **FAST)  # fmt: skip
    assert again.config.data.data == run.config.data.data  # saved once, by content
    np.testing.assert_array_equal(
        autoencoders.encode(run.dir, x.head(20)),
        autoencoders.encode(run.dir, torch.from_numpy(x.head(20).to_numpy().copy())),
    )
    scores, labels = autoencoders.score(run.dir, x.head(30))
    assert scores.shape == (30,) and labels is None
    found = autoencoders.cluster(run.dir, data=x, labels=y, out=tmp_path / "clusters", quiet=True)
    assert found.summary["k"] == 10 and found.summary["rows"] == len(x)
    predicted = autoencoders.predict(tmp_path / "clusters", x.head(20), device=DEVICE)[0]
    assert np.array_equal(predicted, found.labels[:20])
    assert autoencoders.evaluate_run(run.dir, device=DEVICE)["test_sse_per_image"] == pytest.approx(
        run.metrics["test_sse_per_image"]
    )


@pytest.fixture(scope="module")
def frame_run(frame, tmp_path_factory):
    """A short run on the digits frame, whose 0..16 values the run scales by 1/16."""
    return autoencoders.train(
        data=frame[0],
        labels=frame[1],
        layers=[64, 16, 4],
        epochs=2,
        out=str(tmp_path_factory.mktemp("fr") / "run"),
        **FAST,
    )


def test_a_frame_s_label_column_gives_the_labels_and_is_no_feature(frame, frame_run, tmp_path):
    whole = frame[0].assign(digit=frame[1])
    run = autoencoders.train(data=whole, label_column="digit", layers=[64, 16, 4], epochs=2,
                             out=str(tmp_path / "run"), **FAST)  # fmt: skip
    assert run.config.data.columns == list(frame[0].columns)  # the label is no feature
    for key in ("test_sse_per_image", "linear_probe_accuracy"):  # the same run as with labels=
        assert run.metrics[key] == frame_run.metrics[key]
    np.testing.assert_array_equal(autoencoders.encode(run.dir, whole), autoencoders.encode(run.dir, frame[0]))
    # recorded by name: a later frame that has the column gives its labels, as a later CSV would
    assert run.config.data.label_column == "digit"
    np.testing.assert_array_equal(autoencoders.score(run.dir, whole.head(50))[1], frame[1].head(50))
    assert autoencoders.score(run.dir, frame[0].head(50))[1] is None  # a frame without it: none
    clustered = autoencoders.cluster(run.dir, whole.head(200), out=tmp_path / "c", quiet=True)
    assert clustered.summary["k"] == len(np.unique(frame[1].head(200))) and "accuracy" in clustered.summary
    by_index = autoencoders.train(data=whole, label_column=-1, layers=[64, 16, 4], epochs=2,
                                  out=str(tmp_path / "i"), **FAST)  # fmt: skip
    assert by_index.metrics["test_sse_per_image"] == run.metrics["test_sse_per_image"]  # the same column
    with pytest.raises(
        UserError, match=r"label_column 'digt' is neither a column of the data frame nor the index of one"
    ):
        autoencoders.train(data=whole, label_column="digt", out=str(tmp_path / "a"), **FAST)
    with pytest.raises(UserError, match="labels and label_column='digit' both give labels; give one of them"):
        autoencoders.train(data=whole, label_column="digit", labels=frame[1], out=str(tmp_path / "b"), **FAST)
    with pytest.raises(UserError, match="give the labels of rows in an array as labels="):
        autoencoders.train(data=whole.to_numpy(), label_column=64, out=str(tmp_path / "c"), **FAST)


def test_a_frame_is_read_by_the_run_s_column_names(frame, frame_run):
    x = frame[0].head(30)
    assert frame_run.config.data.columns == list(x.columns)  # recorded
    codes = autoencoders.encode(frame_run.dir, x)
    shuffled = x[x.columns[::-1]].assign(extra=1.0)  # another order, a column more
    np.testing.assert_array_equal(autoencoders.encode(frame_run.dir, shuffled), codes)
    np.testing.assert_array_equal(
        autoencoders.score(frame_run.dir, shuffled)[0], autoencoders.score(frame_run.dir, x)[0]
    )
    with pytest.raises(UserError, match=r"the data frame lacks 1 of the run's columns \('pixel_3'\)"):
        autoencoders.encode(frame_run.dir, x.drop(columns="pixel_3"))
    np.testing.assert_array_equal(
        autoencoders.encode(frame_run.dir, x.to_numpy()), codes
    )  # an array: in order
    half = torch.tensor(x.to_numpy(), dtype=torch.bfloat16)  # NumPy has no bfloat16
    np.testing.assert_array_equal(
        autoencoders.encode(frame_run.dir, half), autoencoders.encode(frame_run.dir, half.float())
    )
    # a frame of flags and nullable integers is numeric too
    mixed = x.astype({"pixel_0": bool, "pixel_1": "Int64"})
    np.testing.assert_array_equal(
        autoencoders.encode(frame_run.dir, mixed), autoencoders.encode(frame_run.dir, mixed.to_numpy(float))
    )


def test_only_names_that_identify_columns_are_recorded_and_given_names_must_fit(frame, tmp_path):
    from autoencoders.data.memory import frame_columns

    x = frame[0]
    assert frame_columns(x.rename(columns=lambda c: f" {c} ")) == list(x.columns)  # spaces around: left out
    assert frame_columns(pd.DataFrame(x.to_numpy())) is None  # pandas' own numbers
    assert frame_columns(x.set_axis(["a"] * 64, axis=1)) is None  # repeated names
    assert frame_columns(x.set_axis([""] + list(x.columns[1:]), axis=1)) is None
    twice = autoencoders.train(
        data=x.set_axis(["a"] * 64, axis=1), layers=[64, 4], epochs=1, out=str(tmp_path / "a"), **FAST
    )
    assert twice.config.data.columns is None  # trained, its columns taken in order
    # columns pick a frame's features, as a CSV's: an id column left out (before, refused)
    features = list(x.columns[::-1])
    picked = autoencoders.train(data=x.assign(id=range(len(x))), columns=features, layers=[64, 4], epochs=1,
                                out=str(tmp_path / "b"), **FAST)  # fmt: skip
    assert picked.config.data.columns == features
    np.testing.assert_array_equal(
        autoencoders.encode(picked.dir, x), autoencoders.encode(picked.dir, x[features])
    )
    with pytest.raises(
        UserError, match=r"^columns names 'pixel_9x', which the data frame does not hold \(did you"
    ):
        autoencoders.train(data=x, columns=["pixel_9x"], out=str(tmp_path / "c"), **FAST)
    with pytest.raises(
        UserError, match=r"^columns picks a data frame's columns by name, and this frame's are num"
    ):
        autoencoders.train(data=pd.DataFrame(x.to_numpy()), columns=["a"], out=str(tmp_path / "d"), **FAST)
    named = autoencoders.train(
        data=x.to_numpy(), columns=list(x.columns), layers=[64, 4], epochs=1, out=str(tmp_path / "n"), **FAST
    )
    np.testing.assert_array_equal(
        autoencoders.encode(named.dir, x[x.columns[::-1]]), autoencoders.encode(named.dir, x)
    )
    with pytest.raises(UserError, match="columns names 2 columns and digits has 64 features"):
        autoencoders.train(data="digits", columns=["a", "b"], out=str(tmp_path / "c"), **FAST)


def test_a_value_beyond_the_training_range_scores_as_far_out_as_it_is(frame_run, frame):
    """The model sees such a value clipped to the range, where it may look ordinary; the score adds
    its squared distance beyond the range (scaled units), so the farther out, the higher."""
    rows = frame[0].head(20).to_numpy().copy()
    base, _ = autoencoders.score(frame_run.dir, rows)
    far = rows.copy()
    far[:, 5] = [16 + 16 * k for k in range(1, 21)]  # 1 to 20 training ranges (0 to 16) beyond it
    with pytest.warns(UserWarning, match="lie far outside the range the run was trained on"):
        scored, _ = autoencoders.score(frame_run.dir, far)
    at_edge = far.copy()
    at_edge[:, 5] = 16  # what the model sees of them: the edge of the range
    edge, _ = autoencoders.score(frame_run.dir, at_edge)
    np.testing.assert_allclose(scored - edge, np.arange(1, 21) ** 2, rtol=1e-6)
    assert (scored[5:] > base.max()).all()  # 6 ranges out: above every ordinary row (BCE ~ 16-28 nats)


def test_scoring_the_rows_a_run_trained_on_says_so_however_they_are_given(frame_run, frame, tmp_path):
    import shutil

    def includes_training_rows(data, split="all", labels=None):
        return autoencoders.anomaly_scores_against_pca(frame_run.dir, data, 3, split, labels=labels)[
            "training_rows"
        ]

    with pytest.warns(DataWarning):  # class 3 trained on: said, too
        assert includes_training_rows(frame[0], labels=frame[1])  # the very frame
        assert includes_training_rows(frame[0][frame[0].columns[::-1]], labels=frame[1])  # by name
        assert not includes_training_rows(frame[0].iloc[:-1], labels=frame[1].iloc[:-1])  # other rows
    spec = frame_run.config.data.data  # where train kept the frame: a copy of it is the same rows
    shutil.copy(spec.partition(":")[2], tmp_path / "copy.npy")
    shutil.copy(frame_run.config.data.labels, tmp_path / "labels.npy")
    with pytest.warns(DataWarning):
        assert includes_training_rows(f"npy:{tmp_path / 'copy.npy'}", labels=str(tmp_path / "labels.npy"))
        assert not includes_training_rows(
            f"npy:{tmp_path / 'copy.npy'}", "test", str(tmp_path / "labels.npy")
        )


def test_rows_in_memory_with_nan_are_refused_by_every_function(frame_run, frame):
    rows = frame[0].head(10).to_numpy().copy()
    rows[2, 5] = np.nan
    for call in (autoencoders.encode, autoencoders.reconstruct, autoencoders.score):
        with pytest.raises(
            UserError, match=r"the data given in memory holds 1 missing \(NaN\) or infinite value"
        ):
            call(frame_run.dir, rows)
    from scipy.sparse import csr_matrix

    with pytest.raises(UserError, match=r"is a sparse matrix; give it as a dense array \(rows.toarray\(\)\)"):
        autoencoders.encode(frame_run.dir, csr_matrix(frame[0].head(5).to_numpy()))


def test_reconstructions_come_in_the_model_s_scaling_or_the_data_s_units(frame_run, frame):
    from autoencoders.deploy import export
    from autoencoders.trained import open_run

    rows = frame[0].head(20).to_numpy()
    x, recon, _ = autoencoders.reconstruct(frame_run.dir, rows)
    assert x.max() <= 1 and recon.max() <= 1  # scaled: the digits' 0..16 by 1/16
    offset, span = open_run(frame_run.dir).scaler
    assert span.max() == 16
    raw, raw_recon, _ = autoencoders.reconstruct(frame_run.dir, rows, units="data")
    np.testing.assert_allclose(raw, rows, atol=1e-5)
    np.testing.assert_allclose(raw_recon, recon * span + offset, atol=1e-5)
    scripted = frame_run.dir.parent / "autoencoder.pt"
    sidecar = export(frame_run.dir, scripted, "torchscript", "autoencoder")[1]
    assert sidecar["columns"] == list(frame[0].columns)  # the order the served rows take
    served = torch.jit.load(str(scripted))(torch.tensor(rows, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(served, raw_recon, atol=1e-4)
    with pytest.raises(UserError, match="units must be 'data' or 'scaled'"):
        autoencoders.reconstruct(frame_run.dir, rows, units="raw")


def test_what_rows_in_memory_cannot_do_is_said_in_their_own_words(frame_run, frame, tmp_path):
    x, y = frame
    assert autoencoders.visualize(
        frame_run.dir, "recon", tmp_path / "r.png", data=x.head(20)
    ).is_file()  # as given
    with pytest.raises(
        UserError, match=r"^anomalous_class 3: the rows given in memory must hold that class and"
    ):
        autoencoders.anomaly_scores_against_pca(frame_run.dir, x.head(20), 3, labels=np.zeros(20, int))
    with pytest.raises(UserError, match="hold 1 class, so they give no number of clusters; give it, k"):
        autoencoders.cluster(frame_run.dir, x.head(50), labels=np.zeros(50), out=tmp_path / "c")
    with pytest.raises(UserError, match=r"^the data given in memory has only 5 rows; at least 10 are needed"):
        autoencoders.train(data=x.head(5), out=str(tmp_path / "few"), **FAST)
    with pytest.raises(
        UserError,
        match=r"^row 40 of indices is outside the 30 rows of the rows given in memory; give indices from "
        r"0 to 29$",
    ):
        autoencoders.interpolate(frame_run.dir, x.head(30), (0, 40))
    result = autoencoders.classify(frame_run.dir, out=tmp_path / "clf", epochs=1, quiet=True)
    assert result.out == tmp_path / "clf"
    assert autoencoders.predict(result.out, x.head(5))[0].shape == (5,)


def test_frames_with_text_columns_and_labels_of_another_length_are_refused(frame, tmp_path):
    x, y = frame
    with pytest.raises(UserError, match=r"column 'colour' of the data frame is not numeric; .*get_dummies"):
        autoencoders.train(data=x.assign(colour="red"), out=str(tmp_path / "a"), **FAST)
    dates = x.assign(day=pd.date_range("2020-01-01", periods=len(x)))
    with pytest.raises(UserError, match=r"column 'day' of the data frame holds dates; .*\.dt\.days$"):
        autoencoders.train(data=dates, out=str(tmp_path / "a"), **FAST)
    spans = x.assign(wait=pd.to_timedelta(np.arange(len(x)), unit="s"))
    with pytest.raises(UserError, match=r"column 'wait' of the data frame holds durations; .*total_seconds"):
        autoencoders.train(data=spans, out=str(tmp_path / "a"), **FAST)
    with pytest.raises(UserError, match=r"holds numbers stored as Python objects; .*frame\.astype\(float\)$"):
        autoencoders.train(data=x.astype(object), out=str(tmp_path / "a"), **FAST)
    with pytest.raises(UserError, match=r"column 'fee' of the data frame holds numbers stored as Python obj"):
        autoencoders.train(data=x.assign(fee=[Decimal("1.5")] * len(x)), out=str(tmp_path / "a"), **FAST)
    kinds = pd.Categorical(np.arange(len(x)) % 3)  # numbers that name categories: not quantities
    with pytest.raises(UserError, match=r"column 'kind' of the data frame is not numeric; .*get_dummies"):
        autoencoders.train(data=x.assign(kind=kinds), out=str(tmp_path / "a"), **FAST)
    with pytest.raises(UserError, match="^the data in memory holds complex numbers; give real ones"):
        autoencoders.train(data=x.to_numpy() * 1j, out=str(tmp_path / "z"), **FAST)
    with pytest.raises(UserError, match="labels has 100 entries but there are 1797 rows"):
        autoencoders.train(data=x, labels=y[:100], out=str(tmp_path / "b"), **FAST)
    with pytest.raises(UserError, match="labels in memory go with data in memory"):
        autoencoders.train(data="digits", labels=y, out=str(tmp_path / "c"), **FAST)
    trained = autoencoders.train(data="digits", epochs=1, out=str(tmp_path / "e"), **FAST)
    for later in (autoencoders.score, autoencoders.cluster):  # as train refuses them, so does every function
        with pytest.raises(UserError, match="^labels in memory go with data in memory; for a data file give"):
            later(trained.dir, "digits", labels=y)
    shuffled = y.sample(frac=1, random_state=0)  # its index no longer the frame's: pairs by position
    with pytest.raises(UserError, match=r"the labels' index differs from .*\(labels\.loc\[frame\.index\]\)"):
        autoencoders.train(data=x, labels=shuffled, out=str(tmp_path / "d"), **FAST)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "d").exists()


def test_labels_of_rows_in_memory_must_share_their_frame_s_index(frame_run, frame):
    x, y = frame
    rows, labels = x.iloc[:50], y.iloc[:50]
    assert len(autoencoders.score(frame_run.dir, rows, labels=labels)[1]) == 50  # aligned: taken
    for wrong in (labels.reset_index(drop=True).iloc[::-1], labels.set_axis(range(100, 150))):
        for call in (autoencoders.score, autoencoders.cluster):
            with pytest.raises(UserError, match="the labels' index differs from the data frame's"):
                call(frame_run.dir, rows, labels=wrong)
    assert (
        len(autoencoders.score(frame_run.dir, rows, labels=labels.to_numpy())[1]) == 50
    )  # arrays: by position


def test_uint8_pixels_in_memory_are_read_as_from_a_file_and_text_labels_become_classes(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.data * 255 / 16).astype(np.uint8)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    run = autoencoders.train(data=pixels, labels=names[digits.target], layers=[64, 16, 4], epochs=2,
                             out=str(tmp_path / "run"), **FAST)  # fmt: skip
    assert "linear_probe_accuracy" in run.metrics  # the names became ten classes
    assert run.config.data.classes == sorted(names)  # recorded, in the order that numbers them
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows in the units the data was read in: no warning
        np.testing.assert_array_equal(
            autoencoders.encode(run.dir, pixels[:10]),
            autoencoders.encode(run.dir, pixels[:10] / np.float32(255)),
        )
    with pytest.warns(UserWarning, match="far outside the range the run was trained on"):
        autoencoders.encode(run.dir, pixels[:10].astype(np.float32))  # 0..255, not read as value / 255
    with pytest.raises(UserError, match=r"the data in memory holds 20 missing \(NaN\) or infinite value"):
        autoencoders.train(
            data=np.where(np.arange(64) == 3, np.nan, 0.5)[None].repeat(20, 0), out=str(tmp_path / "n")
        )


def test_a_frame_of_uint8_columns_holds_quantities_not_pixels(frame, tmp_path):
    """Columns pandas stores as uint8 (counts, scores, downcast integers) are numbers as a CSV's
    are: the same rows in any other dtype, or read from a CSV file, give the same codes."""
    small, _ = frame
    counts = small.astype(np.uint8)  # digits' values, 0..16
    run = autoencoders.train(data=counts, layers=[64, 8], epochs=2, out=str(tmp_path / "run"), **FAST)
    counts.to_csv(tmp_path / "counts.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same units however they come: no warning
        codes = autoencoders.encode(run.dir, counts)
        np.testing.assert_array_equal(autoencoders.encode(run.dir, counts.astype(np.int64)), codes)
        np.testing.assert_allclose(
            autoencoders.encode(run.dir, f"csv:{tmp_path / 'counts.csv'}", split="all"), codes, atol=1e-6
        )


def test_images_in_memory_of_another_layout_than_the_runs_are_refused(tmp_path):
    """Of the run's width but another shape, their pixels would reach other inputs: refused in one
    line; gray images with their one channel last hold the same order, and are taken."""
    from sklearn.datasets import load_digits

    images = (load_digits().data / 16).astype(np.float32).reshape(-1, 8, 8)
    run = autoencoders.train(data=images, layers=[64, 8], epochs=1, out=str(tmp_path / "run"), **FAST)
    with pytest.raises(UserError, match=r"are 1×4×16 \(C×H×W\) and the run takes 1×8×8; give them as"):
        autoencoders.encode(run.dir, images.reshape(-1, 4, 16))
    np.save(tmp_path / "other.npy", images.reshape(-1, 4, 16))  # a file of them too, whatever the split
    for split in ("all", "test"):
        with pytest.raises(
            UserError, match=r"the images of npy:.*other.npy are 1×4×16 \(C×H×W\) and the run"
        ):
            autoencoders.encode(run.dir, f"npy:{tmp_path / 'other.npy'}", split=split)
    codes = autoencoders.encode(run.dir, images)
    np.testing.assert_array_equal(autoencoders.encode(run.dir, images[..., None]), codes)  # N×H×W×1
    np.testing.assert_array_equal(autoencoders.encode(run.dir, images.reshape(-1, 64)), codes)  # flat rows
    autoencoders.cluster(run.dir, images, k=3, out=tmp_path / "c", quiet=True)
    clusters = tmp_path / "c"
    with pytest.raises(UserError, match=r"are 1×4×16 \(C×H×W\) and the run takes 1×8×8"):
        autoencoders.predict(clusters, images.reshape(-1, 4, 16))  # a clustering's predictions too
    with pytest.raises(UserError, match=r"the images of npy:.*other.npy are 1×4×16"):
        autoencoders.predict(clusters, f"npy:{tmp_path / 'other.npy'}")
    np.testing.assert_array_equal(
        autoencoders.predict(clusters, images.reshape(-1, 64))[0], autoencoders.predict(clusters, images)[0]
    )


def test_a_run_on_files_works_from_anywhere_and_on_new_files_without_its_labels(tmp_path, monkeypatch):
    """The run records where its data is; its labels file and label column belong to its own
    rows, so new files of the same kind are read without them, or with the label column they have."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.data / 16).astype(np.float32), digits.target
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    (
        np.save(work / "rows.npy", x[:600]),
        np.save(work / "labels.npy", y[:600]),
        np.save(work / "new.npy", x[600:900]),
    )
    header = ",".join([*(f"p{i}" for i in range(64)), "label"])
    table = np.column_stack([x, y])
    np.savetxt(work / "table.csv", table[:600], delimiter=",", header=header, comments="", fmt="%g")
    np.savetxt(
        work / "new.csv", x[600:700], delimiter=",", header=header.rsplit(",", 1)[0], comments="", fmt="%g"
    )
    np.savetxt(work / "labelled.csv", table[600:700], delimiter=",", header=header, comments="", fmt="%g")
    monkeypatch.chdir(work)
    settings = FAST | {"layers": [64, 16], "epochs": 1}
    npy = autoencoders.train(data="npy:rows.npy", labels="labels.npy", out=str(work / "npy"), **settings)
    csv = autoencoders.train(data="csv:table.csv", label_column="label", out=str(work / "csv"), **settings)
    monkeypatch.chdir(elsewhere)
    assert autoencoders.evaluate_run(npy.dir, device=DEVICE)["test_sse_per_image"] == pytest.approx(
        npy.metrics["test_sse_per_image"]
    )
    assert autoencoders.encode(npy.dir, f"npy:{work / 'new.npy'}").shape == (300, 16)
    assert autoencoders.score(npy.dir, "npy:../work/rows.npy")[1] is not None  # its own rows: labelled
    assert autoencoders.score(npy.dir, f"npy:{work / 'new.npy'}")[1] is None
    assert autoencoders.encode(csv.dir, f"csv:{work / 'new.csv'}").shape == (100, 16)
    scores, labels = autoencoders.score(csv.dir, f"csv:{work / 'labelled.csv'}")
    np.testing.assert_array_equal(labels, y[600:700])  # the label column, where the file has it


def test_an_id_column_is_no_feature_and_names_each_row_that_predict_score_and_cluster_write(tmp_path):
    """--id-column: a CSV's column of ids (text) is left out of the features, the run records it by its
    header name (given by index), and the outputs write each row's id beside it, also of a later
    file with its columns in another order, and of a file without a header given it by index."""
    from sklearn.datasets import load_digits

    from autoencoders.cli import run as cli_run

    digits = load_digits()
    names = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(digits.data[:400] / 16, columns=names)
    # pandas quotes an id that holds a comma; the outputs write it as it is
    frame.insert(0, "customer", [f"c{i:03d}, {'north' if i % 2 else 'south'}" for i in range(400)])
    frame["digit"] = digits.target[:400]
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame[["digit", *names[::-1], "customer"]].to_csv(tmp_path / "reordered.csv", index=False)
    frame.drop(columns="digit").to_csv(tmp_path / "bare.csv", index=False, header=False)
    run = autoencoders.train(
        data=f"csv:{tmp_path / 't.csv'}",
        label_column="digit",
        id_column=0,
        layers=[64, 4],
        epochs=1,
        out=str(tmp_path / "r"),
        **FAST,
    )
    assert run.config.data.id_column == "customer" and run.config.data.columns == names
    clf = autoencoders.classify(run.dir, method="knn", quiet=True, out=tmp_path / "k")
    found = autoencoders.cluster(run.dir, split="test", quiet=True, out=tmp_path / "c")
    other, bare = f"csv:{tmp_path / 'reordered.csv'}", f"csv:{tmp_path / 'bare.csv'}"
    for argv in (
        ["score", str(run.dir), "--data", other, "--split", "test", "--out", str(tmp_path / "s.csv")],
        ["predict", str(clf.out), "--data", other, "--out", str(tmp_path / "p.csv")],
        ["score", str(run.dir), "--data", bare, "--id-column", "0", "--out", str(tmp_path / "b.csv")],
        ["encode", str(run.dir), "--data", other, "--split", "test", "--out", str(tmp_path / "e.csv")],
    ):
        assert cli_run(argv) == 0
    ids = frame["customer"].to_numpy()
    for written, name in ((tmp_path / "s.csv", "customer"), (tmp_path / "p.csv", "customer"),
                          (found.out / "clusters.csv", "customer"), (tmp_path / "b.csv", "id"),
                          (tmp_path / "e.csv", "customer")):  # fmt: skip
        table = pd.read_csv(written)
        first = ["row", "data_row", name] if "data_row" in table else ["row", name]
        assert list(table.columns[: len(first)]) == first, written
        np.testing.assert_array_equal(table[name], ids[table[first[-2]]])
    scores = pd.read_csv(tmp_path / "s.csv")  # the same rows score the same whichever file holds them
    own = autoencoders.score(run.dir, f"csv:{tmp_path / 't.csv'}", split="test")[0]
    np.testing.assert_allclose(scores["score"], own, rtol=1e-5)
    codes = pd.read_csv(tmp_path / "e.csv")
    assert list(codes.columns[3:]) == ["code_0", "code_1", "code_2", "code_3", "label"]
    np.testing.assert_allclose(
        codes.iloc[:, 3:7], autoencoders.encode(run.dir, f"csv:{tmp_path / 't.csv'}", split="test"), rtol=1e-5
    )
    np.testing.assert_array_equal(codes["label"], digits.target[codes["data_row"]])
    # Python's functions give the rows in the same order, and row_ids says which rows they are
    said = autoencoders.row_ids(run, other, split="test")
    assert list(said) == ["data_row", "customer"]
    np.testing.assert_array_equal(said["data_row"], codes["data_row"])
    np.testing.assert_array_equal(said["customer"], codes["customer"])
    assert list(autoencoders.row_ids(run, bare, id_column=0)) == ["id"]  # all rows: no data_row
    assert autoencoders.row_ids(run, "digits") == {}
    with pytest.raises(UserError, match="rows given in memory are named by their order"):
        autoencoders.row_ids(run, frame)
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "b.csv")["score"], autoencoders.score(run.dir, bare, id_column=0)[0], rtol=1e-5
    )


def test_an_id_column_in_files_without_a_header_and_where_only_some_files_have_it(tmp_path):
    """Ids beside a label in a file without a header (its width counts the id), ids with "#" (text, not
    a comment), and an id column a clustering read from another file: the run's own file, without
    it, is read without ids, and one a header names otherwise is not read by the recorded index."""
    from sklearn.datasets import load_digits

    from autoencoders.cli import run as cli_run

    digits = load_digits()
    x, y = digits.data[:300].astype(int), digits.target[:300]
    ids = np.array([f"#{i}" if i % 7 else f"r{i}" for i in range(300)])
    bare = pd.DataFrame(x).assign(digit=y)
    bare.insert(0, "key", ids)
    bare.to_csv(tmp_path / "h.csv", index=False, header=False)
    bare.to_csv(tmp_path / "h2.csv", index=False, header=False)
    named = pd.DataFrame(x, columns=[f"f{j}" for j in range(64)]).assign(digit=y)
    named.to_csv(tmp_path / "named.csv", index=False)
    settings = dict(layers=[64, 4], epochs=1, **FAST)
    run = autoencoders.train(data=f"csv:{tmp_path / 'h.csv'}", id_column=0, label_column=-1,
                             out=str(tmp_path / "r"), **settings)  # fmt: skip
    assert (
        cli_run(
            ["score", str(run.dir), "--data", f"csv:{tmp_path / 'h2.csv'}", "--out", str(tmp_path / "s.csv")]
        )
        == 0
    )
    scored = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert scored["id"].tolist() == ids.tolist() and scored["label"].tolist() == y.tolist()
    own = autoencoders.train(data=f"csv:{tmp_path / 'named.csv'}", label_column="digit",
                             out=str(tmp_path / "own"), **settings)  # fmt: skip
    found = autoencoders.cluster(own.dir, data=f"csv:{tmp_path / 'h.csv'}", id_column=0, label_column=-1,
                                 k=3, out=tmp_path / "c", quiet=True)  # fmt: skip
    assert found.summary["reading"] == {"id_column": 0, "label_column": -1}
    assert (
        cli_run(
            [
                "predict",
                str(found.out),
                "--data",
                f"csv:{tmp_path / 'named.csv'}",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert list(predicted.columns[:2]) == ["row", "cluster"] and len(predicted) == 300  # f0 is no id
    np.testing.assert_array_equal(predicted["label"], y)


def test_an_id_column_of_rows_in_memory_is_refused_in_one_line(frame, frame_run):
    """Outputs of rows in memory keep their order; a frame's id column is dropped or left out by columns=."""
    x, _ = frame
    with pytest.raises(
        UserError, match=r"^id_column names a column of a CSV file; of rows in memory, drop it"
    ):
        autoencoders.train(data=x, id_column="pixel_0", layers=[64, 4], epochs=1, **FAST)
    with pytest.raises(UserError, match=r"^id_column names a column of csv: data, and rows in memory"):
        autoencoders.score(frame_run.dir, x.head(5), id_column="pixel_0")


def test_a_label_column_given_by_index_is_recorded_by_its_header_name(tmp_path):
    """Features are found in later files by name, so the label is too: given by index, it was kept as
    an index, and a file with its columns in another order took a feature for its label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    names = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(digits.data[:400] / 16, columns=names)
    frame.insert(3, "digit", digits.target[:400])
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame[["digit", *names[::-1]]].to_csv(tmp_path / "reordered.csv", index=False)
    run = autoencoders.train(
        data=f"csv:{tmp_path / 't.csv'}",
        label_column=3,
        layers=[64, 4],
        epochs=1,
        out=str(tmp_path / "r"),
        **FAST,
    )
    assert run.config.data.label_column == "digit"
    scores, labels = autoencoders.score(run.dir, f"csv:{tmp_path / 'reordered.csv'}")
    np.testing.assert_array_equal(labels, digits.target[:400])
    np.testing.assert_array_equal(scores, autoencoders.score(run.dir, f"csv:{tmp_path / 't.csv'}")[0])
    frame.to_csv(tmp_path / "bare.csv", index=False, header=False)  # by name the label is not found
    bare = f"csv:{tmp_path / 'bare.csv'}"
    with pytest.raises(
        UserError, match=r"cannot be found in it by name: give its 0-based index with label_column, or"
    ):
        autoencoders.score(run.dir, bare)
    np.testing.assert_array_equal(autoencoders.score(run.dir, bare, label_column=3)[1], digits.target[:400])


def test_class_names_are_recorded_and_number_every_later_file_alike(tmp_path, monkeypatch):
    """A file holding some of a run's classes is numbered as the run's own data was, a class the
    run never saw after them; classifiers predict names; --classes sets the order and names."""
    from sklearn.datasets import load_digits

    from autoencoders.cli import run as cli_run
    from autoencoders.data.datasets import read_data
    from autoencoders.data.specs import for_data

    digits = load_digits()
    keep = digits.target < 3
    x, names = (digits.data[keep] / 16).round(3), np.array(["cat", "dog", "emu"])[digits.target[keep]]
    header = ",".join([*(f"p{i}" for i in range(64)), "animal"])

    def write(name: str, rows: np.ndarray, labels: np.ndarray) -> str:
        lines = [header] + [",".join([*map(str, r), c]) for r, c in zip(rows, labels)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        return f"csv:{tmp_path / name}"

    def numbered(run, spec: str) -> tuple[list[int], list[str]]:
        raw = read_data(for_data(run.config.data, spec, 64))
        return raw.y.tolist(), raw.classes

    table = write("table.csv", x[:400], names[:400])
    settings = FAST | {"layers": [64, 8], "epochs": 2, "label_column": "animal"}
    run = autoencoders.train(data=table, out=str(tmp_path / "run"), **settings)
    assert run.config.data.classes == ["cat", "dog", "emu"]
    later = x[400:][names[400:] != "cat"], names[400:][names[400:] != "cat"]
    y, classes = numbered(run, write("dogs-and-emus.csv", *later))
    assert y == np.where(later[1] == "dog", 1, 2).tolist()  # not renumbered 0, 1 by the file's own names
    wolf = write("wolf.csv", x[:3], np.array(["dog", "wolf", "ant"]))
    assert numbered(run, wolf) == ([1, 4, 3], ["cat", "dog", "emu", "ant", "wolf"])  # new ones after
    scores, labels = autoencoders.score(run.dir, wolf)
    assert labels.tolist() == ["dog", "wolf", "ant"]  # a class the run never saw is scored too

    autoencoders.classify(run.dir, method="knn", quiet=True, out=tmp_path / "clf")
    with pytest.raises(UserError, match=r"but class (cat|dog|emu) has \d+ labelled training rows"):
        autoencoders.classify(run.dir, method="knn", n_labels=900, quiet=True, out=tmp_path / "many")
    predicted, proba, classes = autoencoders.predict(tmp_path / "clf", write("new.csv", *later))
    assert classes.tolist() == ["cat", "dog", "emu"]
    assert (predicted == later[1]).mean() > 0.8  # names, and the right ones
    monkeypatch.chdir(tmp_path)
    argv = ["score", str(run.dir), "--data", table, "--out", "s.csv", "--anomalous-class", "emu"]
    with pytest.warns(DataWarning, match="trained on rows of class emu.*--hold-out emu"):  # names too
        assert cli_run(argv) == 0
    assert (tmp_path / "s.csv").read_text().splitlines()[1].endswith(f",{names[0]}")
    found = autoencoders.cluster(run.dir, out=tmp_path / "clusters", quiet=True)
    assert found.summary["k"] == 3
    assert (tmp_path / "clusters" / "clusters.csv").read_text().splitlines()[1].endswith(f",{names[0]}")
    given = autoencoders.cluster(run.dir, data=x[:60], labels=names[:60], out=tmp_path / "given", quiet=True)
    assert given.summary["k"] == 3 and "accuracy" in given.summary  # names in memory, numbered as the run's
    unlabelled = autoencoders.cluster(run.dir, data=x[:60], out=tmp_path / "unlabelled", quiet=True)
    assert unlabelled.summary["k"] == 3  # the run's named classes
    beside = autoencoders.cluster(run.dir, data=write("some.csv", x[:60], names[:60]), quiet=True)
    assert (
        beside.out == run.dir / "cluster-kmeans-3-some" and beside.summary["rows"] == 60
    )  # not the run's own
    assert Path(beside.summary["run_dir"]).is_absolute()

    # --classes: its order numbers the names; class numbers have no names to order
    reordered = autoencoders.train(
        data=table, classes=["emu", "cat", "dog"], out=str(tmp_path / "reordered"), **settings
    )
    expected = np.select([names[:400] == "emu", names[:400] == "cat"], [0, 1], 2).tolist()
    assert numbered(reordered, table) == (expected, ["emu", "cat", "dog"])
    from autoencoders.figures import plots

    drawn, scatter = {}, plots.scatter

    def spy(points, labels, path, axes, title, order, names=None, legend="label"):
        drawn.update(o=order, y=set(labels), legend=legend)
        scatter(points, labels, path, axes, title, order, names, legend)

    monkeypatch.setattr(plots, "scatter", spy)
    autoencoders.visualize(reordered.dir, "latent", tmp_path / "latent.png")
    assert drawn["o"] == ["emu", "cat", "dog"] and drawn["y"] == {"emu", "cat", "dog"}  # in --classes order
    assert drawn["legend"] == reordered.config.data.label_column  # the legend named as the column
    with pytest.raises(UserError, match=r"hold classes classes does not name \('emu'\); name every class"):
        autoencoders.train(data=table, classes=["cat", "dog"], out=str(tmp_path / "short"), **settings)
    np.save(tmp_path / "x.npy", x[:100]), np.save(tmp_path / "y.npy", digits.target[keep][:100])
    numbers = autoencoders.train(
        data=f"npy:{tmp_path / 'x.npy'}", labels=str(tmp_path / "y.npy"), out=str(tmp_path / "numbers"),
        **(settings | {"label_column": None}),
    )  # fmt: skip
    assert numbers.config.data.classes is None
    y, classes = numbered(run, write("numbers.csv", x[:3], np.array(["2", "0", "1"])))
    assert (y, classes) == ([2, 0, 1], None)  # numbers stay numbers, whatever the run's classes
    assert autoencoders.score(run.dir, write("numbers.csv", x[:3], np.array(["2", "0", "1"])))[
        1
    ].tolist() == [2, 0, 1]


def test_missing_labels_in_memory_or_a_labels_file_mark_rows_without_a_class(tmp_path):
    """NaN, None, pandas' NA or an empty name among labels in memory or in a .npy labels file mark rows
    without a class, as a blank cell of a CSV's label column does; before, they were refused."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data[:300], digits.target[:300].astype(float)
    y[::3] = np.nan
    names = np.array([f"n{int(v)}" if v == v else None for v in y], object)
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    given = {
        "floats": (x, y),
        "None among numbers": (x, np.where(np.isnan(y), None, y.astype(object))),
        "pandas' NA": (x, pd.Series(y).astype("Int64")),
        "None among names": (x, names),
        "a labels file": (f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "y.npy")),
    }
    for what, (data, labels) in given.items():
        run = autoencoders.train(data=data, labels=labels, layers=[64, 8], epochs=1, out=str(tmp_path / what),
                                 **FAST)  # fmt: skip
        ds = autoencoders.load_dataset(run.config.data)
        every = np.concatenate([ds.places[s] for s in ("train", "val", "test")])
        read = torch.cat([ds.y_train, ds.y_val, ds.y_test]).numpy()
        np.testing.assert_array_equal(read == UNLABELLED, np.isnan(y[every]), err_msg=what)
        assert run.metrics["labelled_test_rows"] == int((ds.y_test != UNLABELLED).sum()), what
    scored = autoencoders.score(tmp_path / "None among names", x[:4], labels=names[:4])[1]
    assert scored.tolist() == ["", "n1", "n2", ""]
    with pytest.raises(UserError, match=r"^the labels given in memory hold no class in any row; give rows"):
        autoencoders.train(data=x[:20], labels=[None] * 20, out=str(tmp_path / "none"), **FAST)
    # text is a class's name there, "NA" and "-" too (a CSV's cells write a missing value so); True and
    # False are names, as train keeps them
    signs = np.where(digits.target[:300] % 2, "NA", "-")
    run = autoencoders.train(
        data=x, labels=signs, layers=[64, 8], epochs=1, out=str(tmp_path / "signs"), **FAST
    )
    assert run.config.data.classes == ["-", "NA"] and "labelled_test_rows" not in run.metrics
    even = digits.target[:300] % 2 == 0
    run = autoencoders.train(
        data=x, labels=even, layers=[64, 8], epochs=1, out=str(tmp_path / "even"), **FAST
    )
    assert autoencoders.score(run.dir, x[:3], labels=even[:3])[1].tolist() == ["True", "False", "True"]
    with pytest.raises(
        UserError, match=r"^y holds 100 missing label\(s\) \(NaN, None or NA\); mark the rows"
    ):
        AutoencoderClassifier(layers=(64, 8), epochs=1, device=DEVICE).fit(x, y)


def test_encode_of_a_data_frame_reads_no_labels(frame, tmp_path):
    """Codes need no labels: a frame's label column, if any, is not read (before, a column of NaN or
    of fractions there was refused)."""
    x, _ = frame
    labelled = autoencoders.train(data=x.assign(kind=np.arange(len(x)) % 3), label_column="kind",
                                  layers=[64, 8], epochs=1, out=str(tmp_path / "r"), **FAST)  # fmt: skip
    for kind in (np.nan, 1.5):
        codes = autoencoders.encode(labelled.dir, x.head(50).assign(kind=kind))
        np.testing.assert_array_equal(codes, autoencoders.encode(labelled.dir, x.head(50)))


def test_a_file_in_other_units_is_warned_about_in_one_line(digits_run, tmp_path, capsys):
    from sklearn.datasets import load_digits

    from autoencoders import DataConfig, load_dataset
    from autoencoders.cli import main

    pixels = load_digits().data[:50]  # 0..16: the run read digits as value / 16
    np.save(tmp_path / "raw.npy", pixels), np.save(tmp_path / "units.npy", pixels / 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same units: no warning
        autoencoders.encode(digits_run.dir, f"npy:{tmp_path / 'units.npy'}")
    with pytest.warns(UserWarning, match=r"of the values of npy:.*raw.npy lie far outside the range"):
        autoencoders.encode(digits_run.dir, f"npy:{tmp_path / 'raw.npy'}")
    np.savetxt(tmp_path / "raw.csv", pixels, delimiter=",", fmt="%g")  # a table of an image run's rows
    with pytest.warns(UserWarning, match=r"csv:.*raw.csv lie far .*divide scikit-learn's digits .* by 16"):
        autoencoders.encode(digits_run.dir, f"csv:{tmp_path / 'raw.csv'}")
    with pytest.raises(SystemExit) as done:
        main(
            [
                "encode",
                str(digits_run.dir),
                "--data",
                f"npy:{tmp_path / 'raw.npy'}",
                "--out",
                str(tmp_path / "c.npy"),
            ]
        )
    err = capsys.readouterr().err.splitlines()
    assert done.value.code == 0 and len(err) == 1 and err[0].startswith("autoencoders: warning: ")
    with pytest.warns(UserWarning, match="lie far outside the range"):  # rows streamed from disk too
        identity = (np.zeros(64, np.float32), np.ones(64, np.float32))  # digits are read in [0, 1]
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'raw.npy'}", memory_budget=1e-9), scaler=identity)


def test_new_npy_rows_bring_their_own_labels_file(tmp_path, monkeypatch):
    """evaluate, score, cluster and classify read a labels file for other npy: data (--labels)."""
    from sklearn.datasets import load_digits

    from autoencoders.cli import run as cli_run

    digits = load_digits()
    x, y = (digits.data / 16).astype(np.float32), digits.target
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    np.save(tmp_path / "rows.npy", x[:900]), np.save(tmp_path / "labels.npy", names[y[:900]])
    np.save(tmp_path / "new.npy", x[900:]), np.save(tmp_path / "new-labels.npy", names[y[900:]])
    run = autoencoders.train(
        data=f"npy:{tmp_path / 'rows.npy'}", labels=str(tmp_path / "labels.npy"), layers=[64, 16], epochs=2,
        out=str(tmp_path / "run"), **FAST,
    )  # fmt: skip
    new, new_labels = f"npy:{tmp_path / 'new.npy'}", str(tmp_path / "new-labels.npy")
    assert autoencoders.score(run.dir, new)[1] is None  # without its labels file: unlabelled
    scores, labels = autoencoders.score(run.dir, new, labels=new_labels)
    assert labels.tolist() == names[y[900:]].tolist()
    with pytest.warns(DataWarning, match="trained on rows of class three"):
        m = autoencoders.anomaly_scores_against_pca(run.dir, x[900:], "three", labels=names[y[900:]])
    assert m["anomalies"] == int((y[900:] == 3).sum())  # rows in memory with labels in memory
    assert "linear_probe_accuracy" in autoencoders.evaluate_run(run.dir, new, new_labels)
    found = autoencoders.cluster(run.dir, new, labels=new_labels, out=tmp_path / "clusters", quiet=True)
    assert found.summary["k"] == 10 and "accuracy" in found.summary
    monkeypatch.chdir(tmp_path)
    argv = ["classify", str(run.dir), "--data", new, "--labels", new_labels, "--method", "knn", "--quiet"]
    assert cli_run(argv + ["--out", "clf"]) == 0
    with pytest.raises(UserError, match="labels applies to npy: data, not digits; leave it out"):
        autoencoders.score(run.dir, "digits", labels=new_labels)
    with pytest.raises(UserError, match="labels goes with data, the rows it labels"):
        autoencoders.evaluate_run(run.dir, labels=new_labels)


def test_a_csv_run_records_its_header_and_reads_later_tables_by_it(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(x[:300] / 16, columns=[f"p{i}" for i in range(64)]).assign(digit=y[:300])
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame[frame.columns[::-1]].to_csv(tmp_path / "r.csv", index=False)  # the label first, then p63 ... p0
    run = autoencoders.train(data=f"csv:{tmp_path / 't.csv'}", label_column="digit", epochs=2,
                             out=str(tmp_path / "run"), **FAST)  # fmt: skip
    assert run.config.data.columns == [f"p{i}" for i in range(64)]
    reordered, ordered = (autoencoders.encode(run.dir, f"csv:{tmp_path / n}") for n in ("r.csv", "t.csv"))
    np.testing.assert_array_equal(reordered, ordered)
    frame.drop(columns="p7").to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(UserError, match="lacks 1 of the run's columns \\('p7'\\), which it reads by name"):
        autoencoders.encode(run.dir, f"csv:{tmp_path / 'm.csv'}")
    extra = frame.drop(columns="digit").assign(note=1.0)
    extra.to_csv(tmp_path / "e.csv", index=False)  # no label column, one column the run does not read
    np.testing.assert_array_equal(autoencoders.encode(run.dir, f"csv:{tmp_path / 'e.csv'}"), ordered)
    frame.rename(columns={"digit": "class"}).to_csv(tmp_path / "c.csv", index=False)
    scores, labels = autoencoders.score(run.dir, f"csv:{tmp_path / 'c.csv'}")
    assert labels is None and len(scores) == 300
    with pytest.raises(UserError, match=r"a csv: file with the run's label column \(digit\)"):
        autoencoders.anomaly_scores_against_pca(run.dir, f"csv:{tmp_path / 'c.csv'}", 3)
    frame.drop(columns="digit").to_csv(tmp_path / "n.csv", index=False, header=False)  # in order
    np.testing.assert_array_equal(autoencoders.encode(run.dir, f"csv:{tmp_path / 'n.csv'}"), ordered)
    frame.to_csv(tmp_path / "l.csv", index=False, header=False)
    with pytest.raises(UserError, match="the label column 'digit' of the run cannot be found"):
        autoencoders.encode(run.dir, f"csv:{tmp_path / 'l.csv'}")


def test_a_table_is_compared_with_its_raw_features_not_pixels(tmp_path, capsys):
    """Rows that are no image are named as what they are in the summary and the report, 16
    columns too (a square number, which figures may still draw as 4 × 4)."""
    from autoencoders.cli import main

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 16)) + y[:, None]
    np.savetxt(tmp_path / "t.csv", np.column_stack([x, y]), delimiter=",", fmt="%g",
               header=",".join([*(f"f{i}" for i in range(16)), "y"]), comments="")  # fmt: skip
    args = ["train", "--data", f"csv:{tmp_path / 't.csv'}", "--label-column", "y", "--layers", "16,3"]
    args += ["--epochs", "1", "--precision", "fp32", "--device", DEVICE, "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as done:
        main(args)
    summary = capsys.readouterr().out
    assert done.value.code == 0 and "test SSE/row" in summary and "raw features: " in summary
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<h2>Against PCA and raw features</h2>" in page and "raw pixels" not in page
    assert "test SSE per row" in page and "Test rows and their reconstructions" in page
    prose = re.sub(r'src="data:image/png;base64,[^"]*"|\w*_\w*', "", page)  # not the keys, such as image_size
    assert "image" not in prose  # a table's rows, in every caption and label


def test_a_run_on_rows_in_memory_whose_kept_rows_are_gone_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    run = autoencoders.train(data=x, layers=[6, 2], epochs=1, out=str(tmp_path / "run"), **FAST)
    (tmp_path / "cache").rename(tmp_path / "moved")
    with pytest.raises(
        UserError, match=r"the rows given in memory were kept in .*, which is gone .*: give the data"
    ):
        autoencoders.evaluate_run(run.dir)
    np.save(tmp_path / "x.npy", x)  # as the message says: the same rows, given again
    assert "test_mse" in autoencoders.evaluate_run(run.dir, f"npy:{tmp_path / 'x.npy'}")
    # the report takes no data: it names the command that does
    with pytest.raises(UserError, match=r"is gone .*; the report draws .*: draw its figures with visualize"):
        write_report(run.dir)
    visualize(run.dir, "top", tmp_path / "top.png", data=f"npy:{tmp_path / 'x.npy'}")


def test_resuming_a_run_whose_kept_rows_are_gone_says_it_cannot(tmp_path, monkeypatch):
    """Resume takes no data: its message names what can be done instead, not a --data it refuses."""
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    out = tmp_path / "run"
    with ctrl_c_at_batch(5), pytest.raises(KeyboardInterrupt):  # in epoch 2: the first is saved
        autoencoders.train(data=x, layers=[6, 2], epochs=3, batch_size=32, save_every=0, out=str(out), **FAST)
    (tmp_path / "cache").rename(tmp_path / "moved")
    with pytest.raises(
        UserError, match=r"rows given in memory, kept in .*, which is gone .*resumes only"
    ) as e:
        autoencoders.resume(out)
    assert "--data" not in str(e.value) and "train(data=rows" in str(e.value)
    (tmp_path / "moved").rename(tmp_path / "cache")  # put back: it resumes
    assert autoencoders.resume(out).history


def test_rows_in_memory_with_a_cache_that_cannot_be_written_say_so(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "file"))
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    with pytest.raises(
        UserError, match=r"cannot keep the rows given in memory under .*; set \$AUTOENCODERS_CACHE"
    ):
        autoencoders.train(data=x, layers=[4, 2], epochs=1, out=str(tmp_path / "run"), **FAST)
    assert not (tmp_path / "run").exists()


def test_a_later_csv_with_text_in_a_column_says_what_to_change_in_the_file(
    digits_run, frame_run, frame, tmp_path
):
    """A trained run's features are fixed: the message names the file's change, not training's flags."""
    labelled = frame[0].head(30).assign(label=[f"c{v}" for v in frame[1].head(30)])
    labelled.to_csv(tmp_path / "l.csv", index=False)  # a run on digits reads every column
    extra = "the file has 65 feature columns where the run reads 64: give it without that column$"
    with pytest.raises(UserError, match=r"column 'label' holds 'c0', not a number; " + extra):
        autoencoders.encode(digits_run.dir, f"csv:{tmp_path / 'l.csv'}")
    labelled.drop(columns="pixel_0").to_csv(
        tmp_path / "p.csv", index=False
    )  # as wide as the run: by position
    with pytest.raises(UserError, match=r"column 'label' holds 'c0', not a number; the run reads that"):
        autoencoders.encode(digits_run.dir, f"csv:{tmp_path / 'p.csv'}")
    labelled.iloc[:, -7:].to_csv(tmp_path / "s.csv", index=False)  # other data: 6 features and a label
    fewer = "the file has 7 feature columns where the run reads 64: give it rows of the 64 features the run"
    with pytest.raises(UserError, match=r"column 'label' holds 'c0', not a number; " + fewer):
        autoencoders.encode(digits_run.dir, f"csv:{tmp_path / 's.csv'}")
    named = frame[0].head(30).astype(object)
    named.iloc[3, 5] = "n/k"  # in a column the frame's run reads by name
    named.assign(notes="free text").to_csv(tmp_path / "n.csv", index=False)  # a column it does not read
    one = "the run reads that column as a feature, which must hold numbers$"
    with pytest.raises(UserError, match=r"line 5, column 'pixel_5' holds 'n/k', not a number; " + one):
        autoencoders.encode(frame_run.dir, f"csv:{tmp_path / 'n.csv'}")


def test_a_labels_file_name_given_with_rows_in_memory_is_named_as_such(tmp_path):
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    with pytest.raises(
        UserError, match=r"labels='labels.npy' is a file name, .* give numpy.load of that file"
    ):
        autoencoders.train(
            data=x, labels="labels.npy", layers=[4, 2], epochs=1, out=str(tmp_path / "r"), **FAST
        )


def test_a_table_of_zeros_and_ones_in_other_units_gets_the_table_advice(tmp_path):
    """Its scaler leaves 0/1 columns as they are, as an image run's does; the advice is still a table's."""
    x = np.random.default_rng(0).integers(0, 2, (60, 4)).astype(np.float32)
    np.savetxt(tmp_path / "b.csv", x, delimiter=",", fmt="%g")
    run = autoencoders.train(
        data=f"csv:{tmp_path / 'b.csv'}", layers=[4, 2], epochs=1, out=str(tmp_path / "r"), **FAST
    )
    np.savetxt(tmp_path / "big.csv", 100 * x, delimiter=",", fmt="%g")
    with pytest.warns(UserWarning, match=r"convert them to the units of the run's training data$"):
        autoencoders.encode(run.dir, f"csv:{tmp_path / 'big.csv'}")


def test_a_path_where_rows_or_a_spec_are_taken_is_told_to_be_a_spec(digits_run, tmp_path):
    from pathlib import Path

    with pytest.raises(
        UserError,
        match=r"^the data given in memory is a path, x\.npy; give a file as a data spec, such as .npy:x\.npy",
    ):
        autoencoders.encode(digits_run.dir, Path("x.npy"))
    with pytest.raises(UserError, match=r"such as 'csv:t\.csv'$"):
        autoencoders.score(digits_run.dir, Path("t.csv"))


def test_a_csv_label_column_blank_in_every_test_row_says_why_no_accuracy_is_measured(tmp_path, capsys):
    from sklearn.datasets import load_digits

    digits = load_digits()
    test = np.random.default_rng(0).permutation(len(digits.data))[
        : round(0.2 * len(digits.data))
    ]  # the split's
    frame = pd.DataFrame(digits.data / 16, columns=[f"p{i}" for i in range(64)])
    frame["digit"] = digits.target.astype(str)
    frame.loc[test, "digit"] = ""
    frame.to_csv(tmp_path / "t.csv", index=False)
    settings = FAST | {"quiet": False, "layers": [64, 4], "epochs": 1, "out": str(tmp_path / "r")}
    run = autoencoders.train(data=f"csv:{tmp_path / 't.csv'}", label_column="digit", **settings)
    assert "linear_probe_accuracy" not in run.metrics
    said = capsys.readouterr().err
    assert "no accuracy is measured: no test row has a class (their label cells are blank)" in said


def test_a_csv_label_column_blank_in_some_rows_labels_the_rest(tmp_path):
    """Few labels in the user's own file: rows whose label cell is blank (or NA) train the
    autoencoder, and every accuracy, classifier and clustering counts the rows that have a class;
    outputs leave their label empty (before, every command refused the file)."""
    from sklearn.datasets import load_digits

    from autoencoders.api import predictions
    from autoencoders.eval.metrics import code_scores

    digits = load_digits()
    frame = pd.DataFrame(digits.data / 16, columns=[f"p{i}" for i in range(64)])
    blank = np.random.default_rng(0).random(len(frame)) < 0.6
    frame["digit"] = np.where(blank, "", digits.target.astype(str))
    frame.loc[np.flatnonzero(blank)[:5], "digit"] = "NA"
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = f"csv:{tmp_path / 't.csv'}"
    run = autoencoders.train(
        data=spec, label_column="digit", layers=[64, 16], epochs=3, out=str(tmp_path / "r"), **FAST
    )
    with pytest.raises(
        UserError, match=r"missing values in column 'digit', .*if it holds classes, train with label_col"
    ):
        autoencoders.train(
            data=spec, out=str(tmp_path / "no-label-column"), **FAST
        )  # not "impute them" alone
    ds = autoencoders.load_dataset(run.config.data)
    has = ds.y_test.numpy() != UNLABELLED
    assert 0 < has.sum() < len(has)
    commonest = np.bincount(ds.y_train.numpy()[ds.y_train.numpy() != UNLABELLED]).argmax()
    assert run.metrics["majority_class_accuracy"] == pytest.approx(
        (ds.y_test.numpy()[has] == commonest).mean()
    )
    assert run.metrics["linear_probe_accuracy"] > 0.5
    assert run.metrics["labelled_test_rows"] == has.sum()
    assert (
        f"an accuracy on {has.sum()} test rows with a class moves by" in (run.dir / "report.html").read_text()
    )
    clf = autoencoders.classify(run.dir, n_labels=30, method="knn", quiet=True, out=tmp_path / "k")
    assert (clf.metrics["labelled_examples"], clf.metrics["n_test"]) == (30, has.sum())
    predicted, _, _, labels, _ = predictions(clf.out, spec, device=DEVICE)
    assert len(predicted) == len(frame) and (labels[blank] == "").all()
    np.testing.assert_array_equal(labels[~blank].astype(int), digits.target[~blank])
    found = autoencoders.cluster(run.dir, quiet=True, out=tmp_path / "c")
    assert found.summary["k"] == 10 and found.summary["labelled_rows"] == (~blank).sum()
    with pytest.raises(UserError, match=r"no such class in .*\(classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\)$"):
        autoencoders.load_dataset(DataConfig(data=spec, label_column="digit", hold_out=[11]))
    m = autoencoders.anomaly_scores_against_pca(run.dir, spec, 3)
    assert m["rows"] == (~blank).sum() and m["anomalies"] == (digits.target[~blank] == 3).sum()
    # the probes' filter: rows without a class are left out of both sides
    z, y = torch.randn(40, 3), torch.arange(40) % 2 * 2 - 1  # classes -1 and 1
    marked = y.clone()
    marked[::3] = UNLABELLED
    kept = marked != UNLABELLED
    assert code_scores(z, marked, z, marked) == code_scores(z[kept], y[kept], z[kept], y[kept])
    # classes -1 and 1 beside blank cells: -1 stays a class
    pd.DataFrame({"a": np.arange(20) / 20, "label": ["-1", "1", ""] * 6 + ["1", "-1"]}).to_csv(
        tmp_path / "pm.csv", index=False
    )
    read = autoencoders.load_dataset(DataConfig(data=f"csv:{tmp_path / 'pm.csv'}", label_column="label"))
    every = np.concatenate([read.y_train.numpy(), read.y_val.numpy(), read.y_test.numpy()])
    assert sorted(set(every.tolist())) == [UNLABELLED, -1, 1] and (every == -1).sum() == 7
    pd.DataFrame({"a": [0.1, 0.2], "label": ["", "NA"]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(UserError, match="holds no class in any row"):
        autoencoders.train(
            data=f"csv:{tmp_path / 'b.csv'}", label_column="label", out=str(tmp_path / "b"), **FAST
        )
    # without a header, a first row whose label is blank is a row of data, not a header
    (tmp_path / "h.csv").write_text("0.1,0.2,\n0.3,0.4,1\n0.5,0.6,0\n")
    read = autoencoders.load_dataset(
        DataConfig(data=f"csv:{tmp_path / 'h.csv'}", label_column=2, test_fraction=0)
    )
    assert len(read.x_train) + len(read.x_val) == 3
