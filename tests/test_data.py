"""Data loaders on files the tests write: IDX, npy, csv; scaling and splits."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DEVICE, FAST, tiny_idx_arrays, write_idx

import autoencoders
from autoencoders import DataConfig, UserError, load_dataset
from autoencoders.data.classes import UNLABELLED, warn_if_unlabelled_marker
from autoencoders.data.scaling import apply_scaler
from autoencoders.data.tables import csv_feature_names, load_csv
from autoencoders.errors import DataWarning
from autoencoders.sklearn import AutoencoderClassifier, AutoencoderTransformer

# many tests here label each row by its id, to follow the rows through the splits: the warning that
# such labels are no classes is true of them, and tested where meant
pytestmark = pytest.mark.filterwarnings("ignore:.*a quantity or an id rather than classes:UserWarning")

# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_dir_shapes_scaling_labels_and_own_test_split(idx_dir, gz):
    directory, arrays = idx_dir(gz=gz)
    ds = load_dataset(DataConfig(data=f"idx:{directory}", val_fraction=0.1))
    train_img, train_lab = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    test_img, test_lab = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]

    assert ds.n_features == 16
    assert ds.image_shape == (4, 4)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (36, 4, 10)
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.dtype == torch.float32
    # uint8 images are scaled by /255 and nothing else (the scaler is the identity)
    assert torch.equal(ds.offset, torch.zeros(16)) and torch.equal(ds.span, torch.ones(16))
    expected_test = torch.from_numpy(test_img.reshape(10, 16).astype(np.float32) / np.float32(255))
    # the dataset's own t10k split is the test split, complete and in file order
    assert torch.equal(ds.x_test, expected_test)
    assert torch.equal(ds.y_test, torch.from_numpy(test_lab.astype(np.int64)))
    assert ds.y_test.dtype == torch.int64

    # train + validation are exactly the train file's rows, with their own labels
    ids = torch.cat([ds.x_train, ds.x_val])[:, 0] * 255
    ids = ids.round().long()
    assert sorted(ids.tolist()) == list(range(40))
    flat_train = train_img.reshape(40, 16).astype(np.float32) / np.float32(255)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        rows = (x[:, 0] * 255).round().long()
        assert torch.equal(x, torch.from_numpy(flat_train[rows.numpy()]))
        assert torch.equal(y, torch.from_numpy(train_lab[rows.numpy()].astype(np.int64)))
    both = torch.cat([ds.x_train, ds.x_val])
    assert both.min() == 0.0 and both.max() == 1.0  # pixel 0 -> 0.0, pixel 255 -> 1.0
    # each row's place: a training row's in its file, a test row's after the training file's 40
    for split in ("train", "val"):
        ids = (getattr(ds, f"x_{split}")[:, 0] * 255).round().long().numpy()
        np.testing.assert_array_equal(ds.places[split], ids)
    np.testing.assert_array_equal(ds.places["test"], np.arange(40, 50))
    from autoencoders.trained import scaled_data

    read = scaled_data(
        DataConfig(data=f"idx:{directory}"), f"idx:{directory}", "test", (ds.offset.numpy(), ds.span.numpy())
    )
    np.testing.assert_array_equal(
        read.places, np.arange(40, 50)
    )  # the test file read alone, its header counted


def test_idx_gzip_and_raw_give_identical_datasets(idx_dir):
    raw_dir, _ = idx_dir(gz=False, name="raw")
    gz_dir, _ = idx_dir(gz=True, name="gz")
    a = load_dataset(DataConfig(data=f"idx:{raw_dir}"))
    b = load_dataset(DataConfig(data=f"idx:{gz_dir}"))
    for name in ("x_train", "x_val", "x_test", "y_train", "y_val", "y_test"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_idx_dotted_file_names_are_found(tmp_path):
    """The other spelling in the wild: train-images.idx3-ubyte."""
    arrays = tiny_idx_arrays()
    for stem, array in arrays.items():
        write_idx(tmp_path / stem.replace("-idx", ".idx"), array, gz=False)
    ds = load_dataset(DataConfig(data=f"idx:{tmp_path}"))
    assert len(ds.x_test) == 10 and len(ds.x_train) + len(ds.x_val) == 40


def test_a_trained_runs_idx_test_rows_are_read_without_the_training_files(idx_dir, monkeypatch):
    """Figures, reports and codes of the test split read its own files alone, to the same rows and
    labels the whole dataset's test split holds."""
    from autoencoders.data import sources
    from autoencoders.trained import scaled_data

    directory, _ = idx_dir(gz=True)
    cfg = DataConfig(data=f"idx:{directory}")
    scaler = (np.full(16, 0.02, np.float32), np.full(16, 0.96, np.float32))  # the ends are clipped
    whole = load_dataset(cfg, scaler=scaler)
    read, real = [], sources.read_idx
    monkeypatch.setattr(sources, "read_idx", lambda path: read.append(path) or real(path))
    x, y, classes = scaled_data(cfg, cfg.data, "test", scaler)[:3]
    assert sorted(p.name for p in read) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert np.array_equal(x, whole.x_test.numpy()) and x.dtype == np.float32 and x.min() == 0 and x.max() == 1
    assert np.array_equal(y, whole.y_test.numpy()) and y.dtype == np.int64 and classes is None


# ---------------------------------------------------------------- npy


def test_npy_2d_with_labels_keeps_rows_and_labels_together(npy_data):
    xp, yp, x = npy_data
    ds = load_dataset(DataConfig(data=f"npy:{xp}", labels=str(yp), val_fraction=0.1, test_fraction=0.2))
    assert ds.n_features == 6
    assert ds.image_shape is None  # 6 is not a square
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (43, 5, 12)
    # data already in [0, 1]: no rescaling; labels are row ids, so rows must match them
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert ys.dtype == torch.int64
        assert torch.equal(xs, torch.from_numpy(x[ys.numpy()]))


def test_npy_without_labels_has_no_labels(npy_data):
    xp, _, _ = npy_data
    ds = load_dataset(DataConfig(data=f"npy:{xp}"))
    assert ds.y_train is None and ds.y_val is None and ds.y_test is None


def test_npy_3d_images_are_flattened(tmp_path):
    x = np.random.default_rng(2).random((30, 3, 5)).astype(np.float32)
    np.save(tmp_path / "img.npy", x)
    np.save(tmp_path / "lab.npy", np.arange(30))
    ds = load_dataset(DataConfig(data=f"npy:{tmp_path / 'img.npy'}", labels=str(tmp_path / "lab.npy")))
    assert ds.image_shape == (3, 5)
    assert ds.n_features == 15
    assert torch.equal(ds.x_test, torch.from_numpy(x[ds.y_test.numpy()].reshape(-1, 15)))


def test_image_shape_views_channels_last_arrays_and_must_agree_with_images(tmp_path):
    def read(name: str, array: np.ndarray, shape: list[int]) -> tuple[int, ...]:
        np.save(tmp_path / name, array)
        return load_dataset(DataConfig(data=f"npy:{tmp_path / name}", image_shape=shape)).sample_shape

    last = np.random.default_rng(2).random((30, 5, 6, 1)).astype(np.float32)
    assert read("last.npy", last, [5, 6]) == (1, 5, 6)  # N×H×W×1 alone reads as 5 channels of 6×1
    assert read("gray.npy", np.zeros((30, 5, 6), np.float32), [5, 6]) == (1, 5, 6)
    with pytest.raises(UserError, match=r"^image_shape 6,5 differs from the shape the data's images have"):
        read("gray.npy", np.zeros((30, 5, 6), np.float32), [6, 5])
    with pytest.raises(UserError, match=r"save np\.moveaxis\(x, -1, 1\): N×3×H×W\)$"):  # not a view
        read("colour.npy", np.zeros((30, 5, 6, 3), np.float32), [3, 5, 6])


def test_npy_uint8_is_divided_by_255(tmp_path):
    x = np.random.default_rng(3).integers(0, 256, size=(20, 9), dtype=np.uint8)
    x[0, :], x[1, :] = 0, 255
    np.save(tmp_path / "u8.npy", x)
    np.save(tmp_path / "ids.npy", np.arange(20))
    ds = load_dataset(DataConfig(data=f"npy:{tmp_path / 'u8.npy'}", labels=str(tmp_path / "ids.npy")))
    assert ds.image_shape is None  # 9 values a row: a heatmap's few features, not 3×3 pictures
    expected = x[ds.y_train.numpy()].astype(np.float32) / np.float32(255)
    assert torch.equal(ds.x_train, torch.from_numpy(expected))


# ---------------------------------------------------------------- csv


def _csv_table(n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(4)
    table = np.round(rng.random((n, 4)), 3)
    return table


def _scaled(ds, table: np.ndarray) -> np.ndarray:
    """``table`` as ``ds`` scales its rows: a table's columns each to its training range (test and
    validation rows beyond it clipped)."""
    return np.clip((table - ds.offset.numpy()) / ds.span.numpy(), 0, 1)


def test_csv_with_header_and_label_column_by_name(tmp_path):
    table = _csv_table()
    ids = np.arange(len(table))
    lines = ["a,b,label,c,d"] + [f"{r[0]},{r[1]},{i},{r[2]},{r[3]}" for i, r in zip(ids, table)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(DataConfig(data=f"csv:{path}", label_column="label"))
    assert ds.n_features == 4
    assert ds.image_shape is None  # 4 sensors' features: a heatmap names them, 2×2 pictures would not
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        np.testing.assert_allclose(xs, _scaled(ds, table)[ys.numpy()], atol=1e-6)
    assert sorted(torch.cat([ds.y_train, ds.y_val, ds.y_test]).tolist()) == ids.tolist()


@pytest.mark.parametrize("column", ["0", "-5"])
def test_csv_without_header_and_label_column_by_index(tmp_path, column):
    table = _csv_table()
    lines = [f"{i}," + ",".join(str(v) for v in r) for i, r in enumerate(table)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(DataConfig(data=f"csv:{path}", label_column=column))
    assert ds.n_features == 4
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 30  # first line is data, not a header
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        np.testing.assert_allclose(xs, _scaled(ds, table)[ys.numpy()], atol=1e-6)


def test_a_label_column_given_as_a_number_is_its_index_and_a_flag_is_refused(tmp_path):
    from autoencoders.config import Config
    from autoencoders.data.specs import check_data_options
    from autoencoders.errors import UserError

    table = _csv_table()
    path = tmp_path / "t.csv"  # a header whose second name is "3": the int 3 is still column 3
    path.write_text(
        "a,3,b,target\n" + "\n".join(f"{r[0]},{r[1]},{r[2]},{i % 2}" for i, r in enumerate(table)) + "\n"
    )
    cfg = Config().replace(data=f"csv:{path}", label_column=3)  # as Python or a TOML file gives it
    assert cfg.data.label_column == 3
    ds = load_dataset(cfg.data)
    assert ds.n_features == 3 and sorted(set(torch.cat([ds.y_train, ds.y_test]).tolist())) == [0, 1]
    with pytest.raises(UserError, match="is not a whole class number"):  # text "3": the column named 3
        load_dataset(Config().replace(data=f"csv:{path}", label_column="3").data)
    with pytest.raises(UserError, match="--label-column must be text or a whole number, not True"):
        Config().replace(label_column=True)
    with pytest.raises(UserError, match="--label-column applies to csv: data, not digits"):  # 0 is not False
        check_data_options(Config().replace(label_column=0).data)


@pytest.mark.parametrize("header", [True, False])
def test_csv_class_names_become_classes_in_sorted_order(tmp_path, header):
    table = _csv_table()
    names = np.array(["cat", "dog", "emu"])[np.arange(len(table)) % 3]
    lines = [f"{','.join(str(v) for v in r)},{name}" for r, name in zip(table, names)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join((["a,b,c,d,kind"] if header else []) + lines) + "\n")
    ds = load_dataset(DataConfig(data=f"csv:{path}", label_column="kind" if header else "4"))
    assert ds.n_features == 4 and len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 30
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        rows = [int(np.flatnonzero(np.isclose(_scaled(ds, table), x, atol=1e-6).all(1))[0]) for x in xs]
        assert ys.tolist() == [["cat", "dog", "emu"].index(names[r]) for r in rows]


def test_csv_label_columns_by_index_under_a_header_of_numbers_and_refused_mixtures(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("0,1,2,label\n" + "".join(f"{i},{i + 1},{i + 2},{(3, 7)[i % 2]}\n" for i in range(12)))
    for column in ("3", "-1", "label"):  # pandas writes integer column names, the label's own name
        x, y, names = load_csv(path, column)[:3]
        assert x.shape == (12, 3) and y.tolist() == [3, 7] * 6 and names is None
    path.write_text("a,b,label\n1,2,3\n4,5,cat\n")
    with pytest.raises(UserError, match="label column holds both class numbers and 'cat'"):
        load_csv(path, "label")
    path.write_text("a,b,label\n1,2,3\n4,5,NA\n")  # a row without a class
    assert load_csv(path, "label")[1].tolist() == [3, UNLABELLED]
    path.write_text("a,b\n1,2\n4,5,6\n")  # numpy would drop the third cell
    with pytest.raises(UserError, match="line 3 has 3 columns but the first row has 2"):
        load_csv(path)


def test_a_frame_written_by_pandas_keeps_its_numbered_header_out_of_the_rows(tmp_path):
    import pandas as pd

    rows = np.random.default_rng(0).random((10, 6))
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)  # header 0,1,2,3,4,5
    x, y = load_csv(tmp_path / "t.csv")[:2]
    np.testing.assert_allclose(x, rows, rtol=1e-6)
    (tmp_path / "s.csv").write_text("0,1,2\n3,4,5\n")  # three columns: the first row may be data
    assert load_csv(tmp_path / "s.csv")[0].shape == (2, 3)


def test_csv_whole_numbers_read_as_the_same_numbers_written_as_decimals(tmp_path):
    """Whole numbers take a faster reader: what it reads is what the reader of decimals reads, and
    one decimal anywhere (here in the last row) sends the whole file to that reader."""
    whole = np.random.default_rng(0).integers(-(2**40), 2**40, size=(50, 6))  # beyond float32's integers
    whole[3, 2], whole[4, 4] = 0, 255
    ints, decimals, mixed = tmp_path / "ints.csv", tmp_path / "decimals.csv", tmp_path / "mixed.csv"
    ints.write_text("\n".join(",".join(str(v) for v in row) for row in whole) + "\n")
    decimals.write_text("\n".join(",".join(f"{v}.0" for v in row) for row in whole) + "\n")
    mixed.write_text(ints.read_text() + "0.5,1,2,3,4,5\n")
    read, as_decimals, read_mixed = (load_csv(p)[0] for p in (ints, decimals, mixed))
    assert read.dtype == np.float32 and np.array_equal(read, as_decimals)
    assert np.array_equal(read_mixed[:-1], read) and read_mixed[-1].tolist() == [0.5, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("clip", [True, False])
def test_scaling_gives_the_formulas_float32_numbers_and_leaves_the_rows_as_they_were(dtype, clip):
    rng = np.random.default_rng(0)
    x = (rng.random((300, 7)) * 250).astype(dtype)
    before = x.copy()
    offset, span = (rng.random(7) * 20).astype(np.float32), (rng.random(7) * 200 + 1).astype(np.float32)
    scaled = apply_scaler(x, offset, span, clip)
    expected = ((x - offset) / span).astype(np.float32)
    assert scaled.dtype == np.float32 and np.array_equal(
        scaled, np.clip(expected, 0, 1) if clip else expected
    )
    assert np.array_equal(x, before)


def test_csv_with_header_without_labels(tmp_path):
    table = _csv_table()
    path = tmp_path / "t.csv"
    path.write_text("w,x,y,z\n" + "\n".join(",".join(str(v) for v in r) for r in table) + "\n")
    ds = load_dataset(DataConfig(data=f"csv:{path}"))
    assert ds.n_features == 4 and ds.y_train is None
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 30
    rows = {tuple(r) for r in _scaled(ds, table).round(5).tolist()}
    read = torch.cat([ds.x_train, ds.x_val, ds.x_test]).double().numpy().round(5)
    assert {tuple(r) for r in read.tolist()} == rows


def test_quoted_cells_and_a_byte_order_mark_read_as_the_plain_file(tmp_path):
    """As spreadsheets, R and Python's csv module write them: the same rows, labels and names."""
    plain = "a,b,y\n" + "\n".join(f"{i / 10},{i % 3},{'dog' if i % 2 else 'cat'}" for i in range(30)) + "\n"
    quoted = '"a","b","y"\n' + "\n".join(f'{i / 10},{i % 3},"{"dog" if i % 2 else "cat"}"' for i in range(30))
    every = "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in plain.splitlines())
    (tmp_path / "plain.csv").write_text(plain)
    (tmp_path / "quoted.csv").write_text(quoted)
    (tmp_path / "every.csv").write_text(every)
    (tmp_path / "bom.csv").write_text(plain, encoding="utf-8-sig")
    expected = load_csv(tmp_path / "plain.csv", "y")
    for name in ("quoted", "every", "bom"):
        x, y, classes = load_csv(tmp_path / f"{name}.csv", "y")[:3]
        np.testing.assert_array_equal(x, expected[0])
        assert (y == expected[1]).all() and classes == expected[2] == ["cat", "dog"]
        assert csv_feature_names(tmp_path / f"{name}.csv", "y") == ["a", "b"]
    # a comma within quotes is the cell's own, in a header, a label or an id ("Smith, John")
    names = [f'"{c}, {i}"' for i, c in enumerate(("Smith", "Jones", "Lee"))]
    (tmp_path / "comma.csv").write_text(
        '"size, cm",b,"kind, colour",who\n'
        + "".join(f'{i / 10},{i},"{"dog, brown" if i % 2 else "cat"}",{names[i % 3]}\n' for i in range(30))
    )
    x, y, classes, ids = load_csv(tmp_path / "comma.csv", "kind, colour", id_column="who")
    np.testing.assert_array_equal(x[:, 0], (np.arange(30) / 10).astype(np.float32))
    assert classes == ["cat", "dog, brown"] and y.tolist() == [i % 2 for i in range(30)]
    assert ids.tolist() == [f"{('Smith', 'Jones', 'Lee')[i % 3]}, {i % 3}" for i in range(30)]
    assert csv_feature_names(tmp_path / "comma.csv", "kind, colour", "who") == ["size, cm", "b"]
    # at a cell's edge too, and alone: a class ","
    (tmp_path / "edge.csv").write_text(
        '"a,",b\n' + "".join(f'{i},"{"," if i % 2 else "x"}"\n' for i in range(10))
    )
    x, y, classes = load_csv(tmp_path / "edge.csv", "b")[:3]
    assert classes == [",", "x"] and y.tolist() == [1 - i % 2 for i in range(10)]
    assert csv_feature_names(tmp_path / "edge.csv", "b") == ["a,"]
    (tmp_path / "number.csv").write_text("who,a\n" + "".join(f'"1,00{i}",{i}\n' for i in range(10)))
    assert load_csv(tmp_path / "number.csv", id_column="who")[3].tolist() == [f"1,00{i}" for i in range(10)]
    (tmp_path / "text.csv").write_text('a,b\n1,2\n3,"four, five"\n')
    with pytest.raises(UserError, match=r"text.csv line 3, column 'b' holds 'four, five', not a number"):
        load_csv(tmp_path / "text.csv")
    (tmp_path / "decimal.csv").write_text('who,a,b\n"Smith, John","1,5",2\n')
    with pytest.raises(
        UserError, match=r"line 2 holds '1,5', a number with a decimal comma; .* decimal points"
    ):
        load_csv(tmp_path / "decimal.csv", id_column="who")
    r_style = '"","a","b"\n' + "\n".join(f'"{i + 1}",{i},{i % 3}' for i in range(30))
    (tmp_path / "r.csv").write_text(r_style)
    with pytest.raises(UserError, match="numbers the rows from 1: R's row names, which write.csv writes"):
        csv_feature_names(tmp_path / "r.csv")


def test_a_first_row_that_numbers_fewer_than_four_columns_is_read_as_data_with_a_warning(tmp_path):
    """pandas' header of a 3-column frame could be a row of data; above fractions it is warned of,
    above whole numbers (0/1 features, say) it is not."""
    rng = np.random.default_rng(0)
    np.savetxt(
        tmp_path / "f.csv", rng.random((20, 3)), delimiter=",", header="0,1,2", comments="", fmt="%.4f"
    )
    with pytest.warns(
        UserWarning, match=r"first row of .*f.csv reads 0,1,2, as pandas names a frame's columns"
    ):
        assert len(load_csv(tmp_path / "f.csv")[0]) == 21
    np.savetxt(
        tmp_path / "b.csv", rng.integers(0, 2, (20, 2)), delimiter=",", header="0,1", comments="", fmt="%d"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_csv(tmp_path / "b.csv")


def test_a_header_of_numbers_far_above_its_columns_is_warned_of_and_a_plain_first_row_is_not(tmp_path):
    """A spectrum's header, 400..700 nm above reflectances in [0, 1], read as data would squeeze
    every real row into a sliver of its column's scale."""
    rng = np.random.default_rng(0)
    header = ",".join(str(400 + 20 * j) for j in range(16))
    np.savetxt(
        tmp_path / "s.csv", rng.random((30, 16)), delimiter=",", header=header, comments="", fmt="%.4f"
    )
    with pytest.warns(DataWarning, match=r"first row of .*s.csv \(400,420,440,460,...\) lies far outside"):
        assert len(load_csv(tmp_path / "s.csv")[0]) == 31
    rows = rng.random((30, 16))
    rows[0] = 1.5  # beyond every column, but by less than its range: an outlier, not a header
    np.savetxt(tmp_path / "o.csv", rows, delimiter=",", fmt="%.4f")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_csv(tmp_path / "o.csv")


def test_a_column_that_counts_the_rows_is_named_as_a_row_number(tmp_path):
    """An id column is a feature the model would learn; it is named, with or without a header, and
    in a data frame; a column that counts only some rows, or by another step, is not."""
    rng = np.random.default_rng(0)
    x = rng.random((60, 3)).round(4)
    ids = np.column_stack([x[:, :1], np.arange(1, 61), x[:, 1:]])
    (tmp_path / "h.csv").write_text("a,id,b,c\n" + "\n".join(",".join(f"{v:g}" for v in r) for r in ids))
    np.savetxt(tmp_path / "n.csv", ids, delimiter=",", fmt="%g")
    with pytest.warns(UserWarning, match=r"column 'id' of csv:.*h.csv counts the rows \(1, 2, 3, ...\)"):
        load_dataset(DataConfig(data=f"csv:{tmp_path / 'h.csv'}"))
    with pytest.warns(UserWarning, match=r"column 1 of csv:.*n.csv counts the rows"):
        load_dataset(DataConfig(data=f"csv:{tmp_path / 'n.csv'}"))
    with pytest.warns(
        UserWarning, match=r"column 1 of X counts the rows \(1, 2, 3, ...\).*; drop it from X$"
    ):
        AutoencoderTransformer(layers=(4, 2), epochs=1, random_state=0, device=DEVICE).fit(ids)
    frame = pd.DataFrame(ids, columns=["a", "id", "b", "c"])
    memory = r"column 'id' of the data given in memory counts .*; drop it from the data$"
    with pytest.warns(UserWarning, match=memory):
        autoencoders.train(data=frame, layers=[4, 2], epochs=1, out=str(tmp_path / "run"), **FAST)
    ids[40, 1] = 0  # restarts: a counter of something else
    evens = np.column_stack([x, 2 * np.arange(60)])
    for i, table in enumerate([ids, evens, x]):
        np.savetxt(tmp_path / f"{i}.csv", table, delimiter=",", fmt="%g")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_dataset(DataConfig(data=f"csv:{tmp_path / f'{i}.csv'}"))


def test_a_table_is_scaled_column_by_column_where_an_array_in_range_is_left_as_it_is(tmp_path):
    """Columns of ratios within [0, 1] but of different widths: a table's are each stretched to
    [0, 1] on the training split, so the narrow one counts as much as the wide one; the same
    numbers as an array (perhaps pixels) are left as they are, and so is a table already at full range."""
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.uniform(0.49, 0.51, 200), rng.uniform(0, 0.001, 200), rng.random(200)])
    header = "narrow,tiny,wide\n"
    (tmp_path / "t.csv").write_text(header + "\n".join(",".join(f"{v:.6f}" for v in r) for r in table) + "\n")
    np.save(tmp_path / "t.npy", table.astype(np.float32))
    csv = load_dataset(DataConfig(data=f"csv:{tmp_path / 't.csv'}"))
    np.testing.assert_allclose(csv.x_train.min(0).values, [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(csv.x_train.max(0).values, [1, 1, 1], atol=1e-6)
    array = load_dataset(DataConfig(data=f"npy:{tmp_path / 't.npy'}"))
    assert not array.offset.any() and bool((array.span == 1).all())


# ---------------------------------------------------------------- scaling


def test_min_max_scaling_is_fitted_on_the_training_split_only(tmp_path):
    rng = np.random.default_rng(5)
    n = 50
    x = np.stack(
        [
            rng.uniform(-5, 300, n),  # outside [0, 1]
            rng.uniform(10, 20, n),
            np.full(n, 7.0),  # constant feature: no division by zero
        ],
        axis=1,
    ).astype(np.float32)
    np.save(tmp_path / "ids.npy", np.arange(n))
    np.save(tmp_path / "x.npy", x)
    cfg = DataConfig(data=f"npy:{tmp_path / 'x.npy'}", labels=str(tmp_path / "ids.npy"))
    test_ids = load_dataset(cfg).y_test.numpy()
    # a far outlier in a test row must not move the scaling fitted on training rows
    x[test_ids[0], 0] = 1e6
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset(cfg)
    assert np.array_equal(ds.y_test.numpy(), test_ids)

    train = x[ds.y_train.numpy()]
    lo, hi = train.min(axis=0), train.max(axis=0)
    np.testing.assert_allclose(ds.offset.numpy(), lo)
    np.testing.assert_allclose(ds.span.numpy(), [hi[0] - lo[0], hi[1] - lo[1], 1.0])
    # training split maps onto [0, 1] exactly, feature by feature
    np.testing.assert_allclose(ds.x_train[:, :2].min(0).values.numpy(), [0, 0], atol=1e-6)
    np.testing.assert_allclose(ds.x_train[:, :2].max(0).values.numpy(), [1, 1], atol=1e-6)
    assert torch.all(ds.x_train[:, 2] == 0)
    # validation and test use the same (offset, span), clipped to [0, 1]
    for xs, ys in ((ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        expected = np.clip((x[ys.numpy()] - lo) / ds.span.numpy(), 0, 1)
        np.testing.assert_allclose(xs.numpy(), expected, rtol=1e-6, atol=1e-6)
        assert xs.min() >= 0 and xs.max() <= 1
    assert ds.x_test[0, 0] == 1.0  # the outlier is clipped


def test_given_scaler_is_used_instead_of_fitting(npy_data):
    xp, yp, x = npy_data
    offset, span = np.full(6, 0.5, np.float32), np.full(6, 0.25, np.float32)
    with pytest.warns(UserWarning, match="lie far outside the range the run was trained on"):  # half of them
        ds = load_dataset(DataConfig(data=f"npy:{xp}", labels=str(yp)), scaler=(offset, span))
    expected = np.clip((x[ds.y_train.numpy()] - 0.5) / 0.25, 0, 1)
    np.testing.assert_allclose(ds.x_train.numpy(), expected, rtol=1e-6)


def test_all_splits_are_in_unit_interval_even_with_identity_scaler(npy_data):
    xp, yp, x = npy_data
    cfg = DataConfig(data=f"npy:{xp}", labels=str(yp))
    test_ids = load_dataset(cfg).y_test.numpy()
    x = x.copy()
    x[test_ids[0], 0] = 3.0  # only a test row leaves [0, 1]
    np.save(xp, x)
    ds = load_dataset(cfg)
    assert ds.x_test.max() <= 1.0, "Dataset promises splits in [0, 1]"


# ---------------------------------------------------------------- splits


def _ids(ds):
    return ds.y_train.numpy(), ds.y_val.numpy(), ds.y_test.numpy()


def test_splits_are_disjoint_complete_and_sized(npy_data):
    xp, yp, _ = npy_data
    tr, va, te = _ids(load_dataset(DataConfig(data=f"npy:{xp}", labels=str(yp), val_fraction=0.25)))
    assert len(te) == 12 and len(va) == 12 and len(tr) == 36  # 60*0.2, then 48*0.25
    assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(60))


def test_fixed_seed_splits_are_reproducible_and_seed_dependent(npy_data):
    xp, yp, _ = npy_data

    def ids(seed):
        return _ids(load_dataset(DataConfig(data=f"npy:{xp}", labels=str(yp), split_seed=seed)))

    a, b, c = ids(3), ids(3), ids(4)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[2], c[2])


def test_zero_fractions_keep_every_row_for_training(npy_data):
    xp, _, x = npy_data
    ds = load_dataset(DataConfig(data=f"npy:{xp}", val_fraction=0.0, test_fraction=0.0))
    assert len(ds.x_val) == 0 and len(ds.x_test) == 0
    assert torch.equal(ds.x_train, torch.from_numpy(x))


def test_digits_is_embedded_and_in_unit_interval():
    ds = load_dataset(DataConfig(data="digits"))
    assert ds.n_features == 64 and ds.image_shape == (8, 8)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 1797
    assert len(ds.x_test) == round(1797 * 0.2)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert set(torch.cat([ds.y_train, ds.y_test]).tolist()) == set(range(10))


def test_digits_are_scikit_learns_without_importing_it(tmp_path, monkeypatch):
    import subprocess
    import sys

    from sklearn.datasets import load_digits as reference

    from autoencoders.data import sources

    expected = reference()
    for where in (sources.digits_file(), tmp_path / "moved.csv.gz"):  # its file, or its loader
        monkeypatch.setattr(sources, "digits_file", lambda where=where: where)
        images, y = sources.load_digits()
        assert np.array_equal(images, expected.images) and np.array_equal(y, expected.target)
    # a run on digits need not pay for importing scikit-learn
    code = (
        "import sys; from autoencoders.data import sources; sources.load_digits(); "
        "print('sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_held_out_classes_leave_training_and_validation_and_stay_in_the_test_split():
    every = load_dataset(DataConfig(data="digits"))
    held = load_dataset(DataConfig(data="digits", hold_out=["3", "7"]))
    for split in ("train", "val"):
        y = getattr(every, f"y_{split}")
        assert torch.equal(getattr(held, f"y_{split}"), y[(y != 3) & (y != 7)])
    kept = (every.y_train != 3) & (every.y_train != 7)  # the same rows, each split scaled by its own
    unscaled = [d.x_train * d.span + d.offset for d in (held, every)]
    torch.testing.assert_close(unscaled[0], unscaled[1][kept])
    assert torch.equal(held.y_test, every.y_test) and {3, 7} <= set(held.y_test.tolist())


@pytest.mark.parametrize(
    ("hold_out", "message"),
    [
        (["12"], r"hold_out 12: no such class in digits \(classes: 0, 1, 2"),
        ([str(c) for c in range(10)], "leaves no class of digits to train on"),
    ],
)
def test_held_out_classes_must_be_classes_of_the_data(hold_out, message):
    with pytest.raises(UserError, match=message):
        load_dataset(DataConfig(data="digits", hold_out=hold_out))


def test_csv_features_are_found_by_name_where_a_run_names_them(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y,c\n1,2,0,3\n4,5,1,6\n")
    (tmp_path / "r.csv").write_text("c,y,a,b\n3,0,1,2\n6,1,4,5\n")  # the same rows, columns reordered
    (tmp_path / "n.csv").write_text("1,2,0,3\n4,5,1,6\n")  # no header: in order
    assert csv_feature_names(tmp_path / "t.csv", "y") == ["a", "b", "c"]
    assert csv_feature_names(tmp_path / "n.csv", 2) is None
    expected = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    for name, label in (("t.csv", "y"), ("r.csv", "y"), ("n.csv", 2)):
        x, y = load_csv(tmp_path / name, label, columns=["a", "b", "c"])[:2]
        np.testing.assert_array_equal(x, expected)
        assert y.tolist() == [0, 1]
    np.testing.assert_array_equal(load_csv(tmp_path / "r.csv", "y", columns=["c", "a"])[0], [[3, 1], [6, 4]])
    with pytest.raises(
        UserError, match="lacks 1 of the run's columns \\('d'\\), which it reads by name; rename its header"
    ):
        load_csv(tmp_path / "r.csv", "y", columns=["a", "d"])


def test_colour_images_stored_colour_last_are_warned_of(tmp_path):
    from autoencoders.errors import DataWarning

    x = np.random.default_rng(0).integers(0, 256, (12, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "hwc.npy", x)
    with pytest.warns(DataWarning, match=r"read as 6 channels of 6×3 pixels .* give np.moveaxis\(x, -1, 1\)"):
        assert load_dataset(DataConfig(data=f"npy:{tmp_path / 'hwc.npy'}")).sample_shape == (6, 6, 3)
    np.save(tmp_path / "chw.npy", np.moveaxis(x, -1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert load_dataset(DataConfig(data=f"npy:{tmp_path / 'chw.npy'}")).sample_shape == (3, 6, 6)


def test_labels_of_minus_one_beside_classes_are_warned_of(tmp_path):
    from autoencoders.errors import DataWarning

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((30, 4), dtype=np.float32))
    y = np.arange(30) % 3
    np.save(tmp_path / "y.npy", np.where(np.arange(30) % 2, y, -1))
    with pytest.warns(
        DataWarning, match=r"labels file .*y.npy: -1 for 15 of 30 rows, read as a class of its own"
    ):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}", labels=str(tmp_path / "y.npy")))
    minus = np.where(np.arange(30) % 2, y, -1)
    with pytest.warns(DataWarning, match=r"^y: -1 for 15 of 30 rows.*AutoencoderClassifier\(unlabelled=-1\)"):
        AutoencoderClassifier(layers=(4, 2), epochs=1, head_epochs=1, random_state=0, device=DEVICE).fit(
            np.load(tmp_path / "x.npy"), minus
        )
    with warnings.catch_warnings(record=True) as seen:  # kept in the cache: named as given, once
        warnings.simplefilter("default")
        autoencoders.train(data=np.load(tmp_path / "x.npy"), labels=minus, layers=[4, 2], epochs=1,
                           out=str(tmp_path / "run"), **FAST)  # fmt: skip
    said = [str(w.message) for w in seen if issubclass(w.category, DataWarning)]
    assert len(said) == 1 and said[0].startswith("the labels given in memory: -1 for 15 of 30 rows")
    np.save(tmp_path / "y.npy", y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        warn_if_unlabelled_marker(np.array([-1, 1, 1, -1]), "y")  # two classes, -1 and 1: no marker
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}", labels=str(tmp_path / "y.npy")))
    with pytest.warns(
        DataWarning, match=r"marks rows without a class \(scikit-learn's marker\), leave those cel"
    ):
        warn_if_unlabelled_marker(np.array([-1, 0, 1, -1]), "the label column of t.csv")  # a file's: blank


@pytest.mark.parametrize(
    "header, said",
    [("a,b,c", "column 'b'"), ("a,,c", "column 1 (counted from 0)"), ("a,a,c", "column 1 (counted from 0)")],
)
def test_a_csvs_text_cell_is_named_by_a_column_name_only_where_it_names_one_column(tmp_path, header, said):
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\n1,2,3\n4,x,6\n")
    with pytest.raises(UserError, match=rf"t.csv line 3, {re.escape(said)} holds 'x', not a number"):
        load_csv(path)


def test_labels_that_are_a_quantity_or_an_id_are_warned_of(tmp_path):
    """Most rows the only one of their class: every accuracy would count nothing."""
    from autoencoders.classify.few_labels import _class_index
    from autoencoders.errors import DataWarning

    rng = np.random.default_rng(0)
    income = rng.lognormal(10, 1, 60).round()
    np.savetxt(tmp_path / "q.csv", np.c_[rng.random((60, 3)), income], delimiter=",", fmt="%.4f")
    said = (
        r"^the label column of .*q\.csv: 60 classes among 60 rows, 60 of them with one row only: a quantity"
    )
    with pytest.warns(DataWarning, match=said):
        load_dataset(DataConfig(data=f"csv:{tmp_path / 'q.csv'}", label_column=3))
    names = np.array([f"row {i}" for i in range(30)] + ["a"] * 30)  # 30 of 60 rows alone: not most
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        autoencoders.data.classes.name_classes(names, None, "names")
        autoencoders.data.classes.number_classes(np.arange(19), "few rows")  # each may be its own class
    with pytest.warns(DataWarning, match=r"^names: 33 classes among 62 rows, 32 of them with one row only"):
        autoencoders.data.classes.name_classes(np.r_[names, ["b", "c"]], None, "names")
    unseen = r"^the test rows' labels hold 2 class\(es\) that no labelled training row has \('d', 'e'\)"
    with pytest.raises(UserError, match=unseen):
        _class_index(np.array([0, 3, 4, 3]), np.array([0, 1, 2]), "test", ["a", "b", "c", "d", "e"])


def test_whole_numbers_beyond_float32s_exact_ones_are_warned_of(tmp_path):
    """Rows are computed in float32, which holds every whole number only up to 2**24: beyond it,
    values that differ in their last digits become equal."""
    from autoencoders.errors import DataWarning

    big = np.full((30, 3), 2**40, np.int64) + np.arange(90).reshape(30, 3)
    np.save(tmp_path / "big.npy", big)
    with pytest.warns(
        DataWarning, match=r"holds whole numbers up to 1,099,511,627,865, and float32, .* 16,777,216"
    ):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'big.npy'}"))
    np.save(tmp_path / "small.npy", big - 2**40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'small.npy'}"))
