"""Folders of images as data: class folders give labels, sizes and colours, the cache, streaming."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import FAST
from PIL import Image
from sklearn.datasets import load_digits

import autoencoders
from autoencoders.config import DataConfig
from autoencoders.data.datasets import load_dataset, read_data
from autoencoders.data.images import first_image_size, image_folder
from autoencoders.data.stream import RowStream
from autoencoders.errors import DataWarning
from autoencoders.trained import open_run, scaled_data


def _folder(root, colour: bool = False, flat: bool = False, n: int = 15):
    """Digits 0, 1 and 2 as 8×8 PNGs: one folder per class (or all in one folder)."""
    x, y = load_digits(return_X_y=True)
    for digit in (0, 1, 2):
        folder = root if flat else root / f"class-{digit}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(x[y == digit][:n]):
            pixels = (row.reshape(8, 8) * 255 / 16).astype(np.uint8)
            image = Image.fromarray(np.stack([pixels, pixels // 2, 255 - pixels], 2) if colour else pixels)
            image.save(folder / f"{digit}-{i}.png")
    return root


def test_class_folders_give_labels_and_the_pixels_are_read_as_written(tmp_path):
    root = _folder(tmp_path / "digits")
    raw = read_data(DataConfig(data=f"images:{root}"))
    assert raw.x.shape == (45, 64) and raw.sample_shape == (1, 8, 8)
    assert np.array_equal(raw.y, np.repeat([0, 1, 2], 15))  # sorted class folders: class-0, class-1, class-2
    assert raw.classes == ["class-0", "class-1", "class-2"]
    named = read_data(DataConfig(data=f"images:{root}", classes=["class-2", "class-0", "class-1"]))
    assert np.array_equal(named.y, np.repeat([1, 2, 0], 15))  # numbered by the order --classes gives
    x, y = load_digits(return_X_y=True)
    first = (x[y == 0][0] * 255 / 16).astype(np.uint8) / 255  # as _folder wrote it
    np.testing.assert_allclose(raw.x[0], first, atol=1e-6)
    flat = read_data(DataConfig(data=f"images:{_folder(tmp_path / 'flat', flat=True)}"))
    assert flat.y is None and flat.x.shape == (45, 64)


def test_colour_resizing_grayscale_and_skipped_files(tmp_path):
    root = _folder(tmp_path / "colour", colour=True)
    assert read_data(DataConfig(data=f"images:{root}")).sample_shape == (3, 8, 8)
    assert read_data(DataConfig(data=f"images:{root}", grayscale=True)).sample_shape == (1, 8, 8)
    resized = read_data(DataConfig(data=f"images:{root}", image_size=[12, 10]))
    assert resized.sample_shape == (3, 12, 10) and resized.x.shape == (45, 360)
    (root / "class-1" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(DataWarning, match="skipped a file that is not a readable image"):
        kept = read_data(DataConfig(data=f"images:{root}", skip_bad_images=True))
    assert kept.x.shape[0] == 45 and len(kept.y) == 45


def test_colour_images_are_drawn_in_colour(tmp_path):
    from autoencoders.data.shapes import display_shape
    from autoencoders.figures import plots

    assert display_shape((3, 2, 4)) == (3, 2, 4) and display_shape((1, 2, 4)) == (2, 4)
    assert display_shape((2, 2, 4)) is None  # two channels: no image to draw
    red, blue = np.zeros((3, 2, 4)), np.zeros((3, 2, 4))
    red[0], blue[2] = 1, 1
    canvas = plots._mosaic([[red.reshape(-1), blue.reshape(-1)]], (3, 2, 4))
    assert canvas.shape == (2, 9, 3)  # two tiles, a gap between
    assert (
        (canvas[:, :4] == [1, 0, 0]).all()
        and (canvas[:, 5:] == [0, 0, 1]).all()
        and np.allclose(canvas[:, 4], plots.GAP)
    )
    root = _folder(tmp_path / "colour", colour=True)
    run = autoencoders.train(
        data=f"images:{root}", layers=[192, 8], epochs=1, out=str(tmp_path / "run"), **FAST
    )
    assert (run.dir / "reconstructions.png").is_file() and (run.dir / "report.html").is_file()  # drawn
    settings = {"model": "conv", "channels": [4], "layers": [192, 8], "epochs": 1}
    conv = autoencoders.train(data=f"images:{root}", out=str(tmp_path / "conv"), **settings, **FAST)
    pixels = np.asarray(Image.open(autoencoders.visualize(conv.dir, "filters")).convert("RGB"), dtype=int)
    assert (np.abs(pixels - pixels.mean(2, keepdims=True)) > 10).any()  # kernels in colour, not averaged


def test_a_folder_is_decoded_once_and_streams_beyond_the_memory_budget(tmp_path):
    root = _folder(tmp_path / "digits")
    rows, labels = image_folder(root)
    stamp = rows.stat().st_mtime_ns
    assert image_folder(root) == (rows, labels) and rows.stat().st_mtime_ns == stamp  # read from the cache
    (root / "class-2" / "2-0.png").unlink()  # the folder changed: decoded anew
    assert image_folder(root)[0] != rows
    ds = load_dataset(DataConfig(data=f"images:{root}", memory_budget=1e-6))
    assert isinstance(ds.x_train, RowStream) and ds.n_features == 64 and ds.y_train is not None
    assert ds.classes == ["class-0", "class-1", "class-2"]


def test_a_copy_of_a_folder_with_the_same_names_sizes_and_times_is_decoded_as_its_own(tmp_path):
    """BMPs of one size have one file size; an archive unpacked twice gives them one time."""
    dark, bright = tmp_path / "dark", tmp_path / "bright"
    for root, value in ((dark, 20), (bright, 230)):
        root.mkdir()
        for i in range(3):
            Image.fromarray(np.full((4, 4), value + i, np.uint8)).save(root / f"{i}.bmp")
            stamp = 1_600_000_000_000_000_000 + i
            os.utime(root / f"{i}.bmp", ns=(stamp, stamp))
    rows = [np.load(image_folder(root)[0]) for root in (dark, bright)]
    assert rows[0].max() < 30 and rows[1].min() > 200


def test_a_photo_stored_turned_is_read_upright_as_viewers_show_it(tmp_path):
    """A camera's portrait photo: pixels stored landscape, an EXIF orientation that turns them."""
    root = tmp_path / "photos"
    root.mkdir()
    upright = np.zeros((8, 6), np.uint8)
    upright[:4] = 255  # white on top
    Image.fromarray(upright).save(root / "a-upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers turn it 90° clockwise: it is stored turned 90° the other way
    Image.fromarray(np.rot90(upright).copy()).save(root / "b-turned.png", exif=exif)
    assert first_image_size(root) == (8, 6)
    raw = read_data(DataConfig(data=f"images:{root}"))
    assert raw.sample_shape == (1, 8, 6)
    np.testing.assert_array_equal(raw.x[1], raw.x[0])


def test_a_conv_autoencoder_trains_on_a_folder_and_the_commands_read_it(tmp_path):
    root = _folder(tmp_path / "digits", n=30)
    settings = {"model": "conv", "channels": [4, 8], "layers": [64, 4], "epochs": 3}
    run = autoencoders.train(data=f"images:{root}", out=str(tmp_path / "run"), **settings, **FAST)
    assert run.metrics["code_size"] == 4 and "linear_probe_accuracy" in run.metrics
    assert autoencoders.encode(run.dir, f"images:{root}").shape == (90, 4)
    found = autoencoders.cluster(run.dir, out=tmp_path / "clusters", quiet=True)
    assert found.summary["k"] == 3 and found.summary["rows"] == 90


def test_a_run_reads_later_folders_with_its_own_channels(tmp_path):
    """A grayscale folder given to a colour run is read in three channels, a colour folder given
    to a grayscale run in one; the run's own settings stay as given."""
    gray, colour = _folder(tmp_path / "gray", n=10), _folder(tmp_path / "colour", colour=True, n=10)
    for trained, other, channels in ((colour, gray, 3), (gray, colour, 1)):
        out, layers = str(tmp_path / f"on-{trained.name}"), [64 * channels, 4]
        run = autoencoders.train(data=f"images:{trained}", layers=layers, epochs=1, out=out, **FAST)
        assert not run.config.data.rgb and not run.config.data.grayscale
        assert autoencoders.encode(run.dir, f"images:{other}").shape == (30, 4)
    x = read_data(DataConfig(data=f"images:{gray}", rgb=True)).x.reshape(30, 3, 64)
    np.testing.assert_array_equal(x[:, 0], read_data(DataConfig(data=f"images:{gray}")).x)  # each channel
    assert (x == x[:, :1]).all()
    from autoencoders.data.specs import check_data_options
    from autoencoders.errors import UserError

    with pytest.raises(UserError, match="--grayscale asks for one channel and --rgb for three"):
        check_data_options(DataConfig(data=f"images:{gray}", grayscale=True, rgb=True))


def test_a_run_records_its_image_size_and_reads_later_folders_at_it(tmp_path, monkeypatch):
    """A folder of 16×16 images (its own 8×8 ones, each pixel doubled) is read at 8×8: close to
    its own pixels, as far as resampling smooths them."""
    own = _folder(tmp_path / "own", n=10)
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    run = autoencoders.train(data=f"images:{own}", layers=[64, 4], epochs=1, out=str(tmp_path / "r"), **FAST)
    assert run.config.data.image_size == [8, 8]
    autoencoders.encode(run.dir, f"images:{own}")  # at 8×8, as training decoded it: not decoded again
    assert len(list((tmp_path / "cache" / "images").iterdir())) == 1
    large = tmp_path / "large"
    for path in own.rglob("*.png"):
        (large / path.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(path).resize((16, 16), Image.Resampling.NEAREST).save(large / path.parent.name / path.name)
    assert autoencoders.encode(run.dir, f"images:{large}").shape == (30, 4)
    trained = open_run(run.dir)
    pixels, resized = (
        scaled_data(trained.cfg.data, f"images:{d}", "all", trained.scaler)[0] for d in (own, large)
    )
    assert resized.shape == pixels.shape == (30, 64)
    assert 0.9 < np.corrcoef(resized.ravel(), pixels.ravel())[0, 1] < 1  # resized, smoothed a little


@pytest.mark.parametrize("flag", ["--image-size", "--grayscale", "--rgb", "--skip-bad-images"])
def test_image_flags_are_train_options(flag):
    from autoencoders.parser import build_parser

    assert flag in build_parser()._subparsers._group_actions[0].choices["train"].format_help()


def test_cut_off_files_16_bit_images_and_bad_sizes(tmp_path, capsys):
    from autoencoders.errors import UserError

    root = tmp_path / "imgs"
    root.mkdir()
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024).astype(np.uint16)
    Image.fromarray(ramp).save(root / "a.png")  # 16-bit gray
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).convert("L").save(root / "b.jpg")
    cut = root / "c.jpg"
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:-40])
    with pytest.raises(UserError, match=r"c\.jpg is not an image Pillow can read"):
        read_data(DataConfig(data=f"images:{root}"))
    with pytest.warns(DataWarning, match=r"skipped a file that is not a readable image: .*c\.jpg"):
        raw = read_data(DataConfig(data=f"images:{root}", skip_bad_images=True))
    assert raw.x.shape == (2, 64)
    np.testing.assert_allclose(
        raw.x[0] * 255, (ramp >> 8).reshape(-1), atol=1e-4
    )  # the top 8 bits, not clipped
    with pytest.raises(UserError, match="--image-size takes two sizes of at least 1"):
        read_data(DataConfig(data=f"images:{root}", image_size=[8]))
    # among colour images a 16-bit gray one keeps its levels in every channel; gray palette and
    # gray-with-alpha images count as gray
    Image.fromarray(np.full((8, 8), 77, np.uint8)).convert("P").save(root / "d.png")
    Image.fromarray(np.full((8, 8), 55, np.uint8)).convert("LA").save(root / "e.png")
    cut.unlink()
    assert read_data(DataConfig(data=f"images:{root}")).sample_shape == (1, 8, 8)
    Image.fromarray(np.full((8, 8, 3), (10, 20, 30), np.uint8)).save(root / "f.png")
    raw = read_data(DataConfig(data=f"images:{root}"))
    assert raw.sample_shape == (3, 8, 8)
    np.testing.assert_allclose(
        raw.x[0].reshape(3, 64) * 255, np.tile((ramp >> 8).reshape(-1), (3, 1)), atol=1e-4
    )
    assert np.allclose(raw.x[2] * 255, 77, atol=1e-4) and np.allclose(raw.x[3] * 255, 55, atol=1e-4)
    assert not list((tmp_path).glob("**/*.tmp"))


def test_16_bit_images_that_use_12_bits_or_fewer_are_warned_of_each_time_they_are_read(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):  # 12-bit data, as many cameras save it in 16-bit files: 0..4095
        Image.fromarray((np.arange(64, dtype=np.uint16).reshape(8, 8) * 64 + i).astype(np.uint16)).save(
            root / f"{i}.png"
        )
    said = r"16-bit images of .*imgs hold values up to 4034 .* they keep 16 levels; convert them to 8 bits"
    for _ in range(2):  # decoded, then read from the cache
        with pytest.warns(DataWarning, match=said):
            read_data(DataConfig(data=f"images:{root}"))


def test_an_image_too_large_for_pillow_is_named_or_skipped_as_an_unreadable_one(tmp_path, monkeypatch):
    from autoencoders.errors import UserError

    root = tmp_path / "imgs"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "big.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(root / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels: over twice it, a decompression bomb
    with pytest.raises(UserError, match=r"big\.png is not an image Pillow can read \(Image size"):
        read_data(DataConfig(data=f"images:{root}"))
    with pytest.warns(DataWarning, match=r"skipped a file that is not a readable image: .*big\.png"):
        assert read_data(DataConfig(data=f"images:{root}", skip_bad_images=True)).x.shape == (1, 4)


def test_a_csv_cell_longer_than_the_csv_module_reads_is_named(tmp_path):
    from autoencoders.errors import UserError

    path = tmp_path / "t.csv"
    path.write_text('a,b\n"1",' + "2" * 200_000 + '\n"3",4\n')
    with pytest.raises(
        UserError, match=r"t\.csv line 2 cannot be read as CSV \(field larger than field limit"
    ):
        read_data(DataConfig(data=f"csv:{path}"))


def test_a_damaged_image_cache_entry_is_decoded_again(tmp_path):
    from autoencoders.data.images import image_folder

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / f"{i}.png")
    first = read_data(DataConfig(data=f"images:{root}")).x
    rows, _ = image_folder(root)
    for damage in ("{}", "not json", '{"skipped": [], "largest_16_bit": "x"}'):
        (rows.parent / "folder.json").write_text(damage)
        np.testing.assert_array_equal(read_data(DataConfig(data=f"images:{root}")).x, first)
    rows.write_bytes(rows.read_bytes()[:-40])  # cut short
    np.testing.assert_array_equal(read_data(DataConfig(data=f"images:{root}")).x, first)


def test_a_run_on_an_array_reads_another_folder_at_its_size_or_as_told_before_its_channels(tmp_path):
    """A run on digits' 8×8 rows given 16×16 colour images and image_size=[8, 8]: resized first, then
    made gray for the run's 64 inputs (their channels were set from their 16×16 size before); without
    image_size, resized to the run's own 8×8 (before, refused as 768 features for 64)."""
    _folder(tmp_path / "gray")
    run = autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=str(tmp_path / "run"), **FAST)
    big = tmp_path / "colour"
    for folder in sorted((tmp_path / "gray").iterdir()):
        (big / folder.name).mkdir(parents=True)
        for path in folder.iterdir():
            gray = np.asarray(Image.open(path).resize((16, 16)))
            Image.fromarray(np.stack([gray] * 3, 2)).save(big / folder.name / path.name)
    clf = autoencoders.classify(
        run.dir, data=f"images:{big}", image_size=[8, 8], method="knn", out=tmp_path / "k", quiet=True
    )
    assert clf.metrics["test_accuracy"] > 0.5
    # without it, at the run's own size: a run trained on an array of images recorded none
    assert run.config.data.image_size is None
    alike = autoencoders.classify(run.dir, data=f"images:{big}", method="knn", out=tmp_path / "s", quiet=True)
    assert alike.metrics["test_accuracy"] == clf.metrics["test_accuracy"]
    codes = autoencoders.encode(run.dir, f"images:{big}")
    np.testing.assert_array_equal(codes, autoencoders.encode(run.dir, f"images:{big}", image_size=[8, 8]))
