"""Data larger than the memory budget: npy rows streamed from disk in shuffled chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST

import autoencoders
from autoencoders.config import DataConfig, TrainConfig, UserError
from autoencoders.data import stream
from autoencoders.data.batches import batches_per_epoch, epoch_batches
from autoencoders.data.datasets import load_dataset
from autoencoders.data.stream import RowStream, chunk_order
from autoencoders.training.loop import fit
from autoencoders.training.steps import autoencoder_step

TINY_BUDGET = 1e-6  # GiB: forces streaming of any file


@pytest.fixture
def big_npy(tmp_path, monkeypatch):
    """A 3000x16 uint8 image array; blocks of 256 rows so a pass spans many chunks."""
    monkeypatch.setattr(stream, "BLOCK_ROWS", 256)
    x = np.random.default_rng(0).integers(0, 256, size=(3000, 4, 4), dtype=np.uint8)
    path = tmp_path / "big.npy"
    np.save(path, x)
    return path, x.reshape(3000, 16).astype(np.float32) / 255


def test_chunk_order_visits_every_position_once():
    g = torch.Generator().manual_seed(0)
    chunks = list(chunk_order(5000, g))
    allpos = np.concatenate(chunks)
    assert sorted(allpos.tolist()) == list(range(5000))
    assert not np.array_equal(allpos, np.arange(5000))  # shuffled


def test_stream_reads_scaled_rows_in_the_asked_order(big_npy):
    path, x = big_npy
    s = RowStream.from_npy(path)
    pos = np.array([2999, 0, 17, 1500])
    np.testing.assert_allclose(s.read(pos).numpy(), x[pos], rtol=1e-6)
    scaled = s.with_scaler((np.full(16, 0.5, np.float32), np.full(16, 0.25, np.float32)))
    np.testing.assert_allclose(scaled.read(pos).numpy(), np.clip((x[pos] - 0.5) / 0.25, 0, 1), rtol=1e-6)
    assert torch.equal(s.subset(np.arange(10, 20)).materialise(), torch.from_numpy(x[10:20]))


def test_streamed_dataset_holds_the_same_rows_as_the_in_memory_one(big_npy):
    path, _ = big_npy
    ram = load_dataset(DataConfig(data=f"npy:{path}"))
    disk = load_dataset(DataConfig(data=f"npy:{path}", memory_budget=TINY_BUDGET))
    assert isinstance(disk.x_train, RowStream) and isinstance(ram.x_train, torch.Tensor)
    assert torch.equal(disk.x_train.materialise(), ram.x_train)
    assert torch.equal(disk.x_val, ram.x_val) and torch.equal(disk.x_test, ram.x_test)
    assert disk.image_shape == (4, 4)


def test_streamed_rows_beyond_the_training_rows_range_are_clipped_as_in_memory(tmp_path):
    """Training rows within [0, 1] scale by nothing; a test row beyond it is clipped all the same
    (unclipped, BCE's floor of the test rows stopped a streamed run after training)."""
    from autoencoders.data.datasets import _split

    x = np.random.default_rng(0).random((300, 8), dtype=np.float32)
    test_rows = _split(len(x), 0.2, 0)[1]  # DataConfig's defaults: test fraction 0.2, split seed 0
    x[test_rows[0]] = 1.7
    np.save(tmp_path / "x.npy", x)
    ram = load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))
    disk = load_dataset(DataConfig(data=f"npy:{tmp_path / 'x.npy'}", memory_budget=TINY_BUDGET))
    assert isinstance(disk.x_train, RowStream) and float(ram.x_test.max()) == 1.0
    assert torch.equal(disk.x_test, ram.x_test)
    run = autoencoders.train(data=f"npy:{tmp_path / 'x.npy'}", memory_budget=TINY_BUDGET, layers=[8, 2],
                             epochs=1, loss="bce", out=str(tmp_path / "r"), **FAST)  # fmt: skip
    assert run.metrics["test_bce_floor"] > 0


@pytest.mark.parametrize("shuffled", [True, False])
def test_epoch_batches_cover_a_stream_once_in_full_batches_and_stay_aligned(big_npy, shuffled):
    path, x = big_npy
    s = RowStream.from_npy(path)
    ids = torch.arange(3000)
    seen = []
    generator = torch.Generator().manual_seed(1) if shuffled else None
    for xb, ib in epoch_batches((s, ids), 100, generator):  # 100 divides neither 3000 rows' chunks nor blocks
        assert torch.equal(xb, torch.from_numpy(x[ib.numpy()]))  # rows and ids stay paired
        seen.append(ib)
    assert [len(b) for b in seen] == [100] * 30  # none cut short at the end of a chunk
    order = torch.cat(seen).tolist()
    assert sorted(order) == list(range(3000)) and (order != sorted(order)) == shuffled


def test_training_on_a_stream_lowers_the_loss(big_npy):
    path, _ = big_npy
    ds = load_dataset(DataConfig(data=f"npy:{path}", memory_budget=TINY_BUDGET))
    torch.manual_seed(0)
    model = autoencoders.DenseAutoencoder([16, 8, 4])
    cfg = TrainConfig(lr=1e-2, **FAST)
    history = fit(autoencoder_step(model, cfg, 1), ds.x_train, ds.x_val, cfg, epochs=4)
    assert history[-1]["val_loss"] < history[0]["val_loss"]


@pytest.mark.parametrize("schedule", ["stagewise", "phased"])
def test_greedy_run_on_streamed_data_with_disk_cached_features(big_npy, tmp_path, schedule, monkeypatch):
    from autoencoders import run as runs

    path, _ = big_npy
    said = []
    monkeypatch.setattr(runs, "say", lambda message, quiet: said.append(message))
    run = autoencoders.train(
        data=f"npy:{path}",
        memory_budget=TINY_BUDGET,
        layers=[16, 12, 8, 4],
        pretrain="greedy",
        schedule=schedule,
        pretrain_epochs=1,
        epochs=1,
        compare=False,
        out=str(tmp_path / schedule),
        **FAST,
    )
    stages = [h["stage"] for h in run.history]
    assert stages == ["pretrain layer 1", "pretrain layer 2", "pretrain layer 3", "fine-tune"]
    assert run.metrics["test_sse_per_image"] > 0
    streams = f"npy:{path} takes more than --memory-budget {TINY_BUDGET:g} GiB as float32 rows: its training"
    assert any(message.startswith(streams) for message in said)


def test_features_written_to_disk_read_back_and_leave_no_named_file(tmp_path, monkeypatch):
    """Greedy pretraining's features beyond the budget: on Linux the file has no name, so a kill
    leaves nothing in the temporary folder."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read $TMPDIR again
    x = torch.rand(700, 6, generator=torch.Generator().manual_seed(0))
    features = stream.write_stream(lambda rows: 2 * rows, x, 6)
    assert torch.equal(features.materialise(), 2 * x)  # not clipped: features keep their values
    if Path("/proc/self/fd").is_dir():
        assert list(tmp_path.iterdir()) == []


def test_nan_in_a_streamed_file_is_a_clear_error(tmp_path):
    x = np.random.default_rng(0).random((500, 6)).astype(np.float32)
    x[321, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(
        UserError, match=r"nan.npy holds missing \(NaN\) or infinite values, the first in row 321"
    ):
        load_dataset(DataConfig(data=f"npy:{tmp_path / 'nan.npy'}", memory_budget=TINY_BUDGET))
    # a trained run reads its streamed training rows unscanned: a read refuses them all the same
    x[321, 2] = 0.5
    np.save(tmp_path / "x.npy", x)
    run = autoencoders.train(data=f"npy:{tmp_path / 'x.npy'}", memory_budget=TINY_BUDGET, layers=[6, 2],
                             epochs=1, out=str(tmp_path / "r"), **FAST)  # fmt: skip
    x[321, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(UserError, match="the first in row 321"):
        autoencoders.encode(run.dir, f"npy:{tmp_path / 'x.npy'}", split="train")


def test_ranks_read_disjoint_halves_of_each_streamed_batch(big_npy):
    path, x = big_npy
    s = RowStream.from_npy(path)
    ids = torch.arange(3000)
    full = list(epoch_batches((s, ids), 64, torch.Generator().manual_seed(2)))
    halves = [list(epoch_batches((s, ids), 64, torch.Generator().manual_seed(2), rank, 2)) for rank in (0, 1)]
    assert len(full) == len(halves[0]) == len(halves[1])
    for (_, ib), (x0, i0), (x1, i1) in zip(full, *halves):
        assert sorted(torch.cat([i0, i1]).tolist()) == sorted(ib.tolist())
        assert not set(i0.tolist()) & set(i1.tolist())
        assert torch.equal(x0, torch.from_numpy(x[i0.numpy()]))
        assert torch.equal(x1, torch.from_numpy(x[i1.numpy()]))


@pytest.mark.parametrize("rows", [3000, 2945, 2881, 40])  # a final batch of 56 rows, of 1; one batch only
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("whole", [False, True])
def test_updates_counted_for_schedules_and_messages_are_the_batches_each_rank_gets(
    big_npy, rows, world, whole
):
    """Every rank steps on every global batch: as many updates as one process makes, less a final
    batch with fewer rows than ranks, or (``whole``) one that is not full where another is."""
    path, _ = big_npy
    ids = torch.arange(rows)
    for data in ((RowStream.from_npy(path).subset(np.arange(rows)), ids), (ids.float(), ids)):
        drawn = [
            list(epoch_batches(data, 64, torch.Generator().manual_seed(0), r, world, whole))
            for r in range(world)
        ]
        assert [len(b) for b in drawn] == [batches_per_epoch(rows, 64, world, whole)] * world
        if whole and rows >= 64:  # every global batch full
            assert {sum(len(b[i][1]) for b in drawn) for i in range(len(drawn[0]))} == {64}


def test_held_out_classes_leave_training_and_validation_in_a_stream_as_in_memory(big_npy):
    path, _ = big_npy
    labels = path.parent / "labels.npy"
    np.save(labels, np.arange(3000) % 4)
    held = {"labels": str(labels), "hold_out": ["1", "3"]}
    ram = load_dataset(DataConfig(data=f"npy:{path}", **held))
    disk = load_dataset(DataConfig(data=f"npy:{path}", memory_budget=TINY_BUDGET, **held))
    assert isinstance(disk.x_train, RowStream)
    assert torch.equal(disk.x_train.materialise(), ram.x_train) and torch.equal(disk.x_val, ram.x_val)
    assert torch.equal(disk.y_train, ram.y_train) and set(ram.y_train.tolist()) == set(
        ram.y_val.tolist()
    ) == {0, 2}
    assert set(disk.y_test.tolist()) == {0, 1, 2, 3}  # the test rows keep them


def test_commands_stream_the_rows_of_a_file_over_the_budget_and_give_what_it_read_whole_gives(
    tmp_path, monkeypatch
):
    """encode, score (a VAE's importance-sampled NLL too), reconstruct, predict and interpolate read
    an npy: file over --memory-budget part by part, never whole, to the numbers of the file read whole."""
    from autoencoders import trained
    from autoencoders.cli import run as cli_run

    rng = np.random.default_rng(0)
    x = rng.random((20_000, 8), dtype=np.float32)  # three parts of at most 8,192 rows
    x[5, 2] = 1.5  # beyond the training range: a score's part outside the model
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x[:, 0] > 0.5).astype(np.int64))
    spec, labels = f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "y.npy")
    runs = [
        autoencoders.train(
            data=spec, labels=labels, layers=[8, 3], epochs=1, out=str(tmp_path / "ae"), **FAST
        ),
        autoencoders.train(
            data=spec, labels=labels, model="vae", layers=[8, 3], epochs=1, out=str(tmp_path / "vae"), **FAST
        ),  # fmt: skip
    ]
    clusters = autoencoders.cluster(runs[0].dir, k=2, out=str(tmp_path / "c"), quiet=True).out
    whole = {
        "codes": autoencoders.encode(runs[0].dir, spec),
        "train codes": autoencoders.encode(runs[0].dir, spec, split="train"),
        "scores": autoencoders.score(runs[0].dir, spec)[0],
        "VAE scores": autoencoders.score(runs[1].dir, spec, iw_samples=20, labels=labels)[0],
        "reconstructions": autoencoders.reconstruct(runs[0].dir, spec, units="data")[1],
        "clusters": autoencoders.predict(clusters, spec)[1],
        "interpolated": autoencoders.interpolate(runs[0].dir, spec, (19_000, 7), split="all")[0],
    }
    against_pca = autoencoders.anomaly_scores_against_pca(runs[0].dir, spec, 1, labels=labels)
    read = []
    real_materialise = RowStream.materialise

    def materialise(self: RowStream) -> torch.Tensor:
        read.append(len(self))
        return real_materialise(self)

    monkeypatch.setattr(RowStream, "materialise", materialise)
    monkeypatch.setattr(trained, "read_data", lambda *args: pytest.fail("the file was read whole"))
    tiny = {"memory_budget": TINY_BUDGET}
    streamed = {
        "codes": autoencoders.encode(runs[0].dir, spec, **tiny),
        "train codes": autoencoders.encode(runs[0].dir, spec, split="train", **tiny),
        "scores": autoencoders.score(runs[0].dir, spec, **tiny)[0],
        "VAE scores": autoencoders.score(runs[1].dir, spec, iw_samples=20, labels=labels, **tiny)[0],
        "reconstructions": autoencoders.reconstruct(runs[0].dir, spec, units="data", **tiny)[1],
        "clusters": autoencoders.predict(clusters, spec, **tiny)[1],
        "interpolated": autoencoders.interpolate(runs[0].dir, spec, (19_000, 7), split="all", **tiny)[0],
    }
    assert autoencoders.anomaly_scores_against_pca(runs[0].dir, spec, 1, labels=labels, **tiny) == against_pca
    for what, numbers in whole.items():
        np.testing.assert_array_equal(streamed[what], numbers, err_msg=what)
    # parts of 8,192 rows, a split's validation and test rows, 10,000 rows sampled for their units
    assert 8192 in read and max(read) <= 10_000 < len(x)  # never the whole file
    assert streamed["scores"][5] > np.median(streamed["scores"]) + 0.25  # 0.5², beyond the range
    # the commands write them part by part
    out = tmp_path / "recon.npy"
    assert cli_run(["reconstruct", str(runs[0].dir), "--data", spec, "--out", str(out), "--units", "data",
                    "--memory-budget", str(TINY_BUDGET)]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(out), whole["reconstructions"])
    assert cli_run(["encode", str(runs[0].dir), "--data", spec, "--labels", labels, "--out",
                    str(tmp_path / "codes.csv"), "--memory-budget", str(TINY_BUDGET)]) == 0  # fmt: skip
    # a file in Fortran order, whose rows are not contiguous, is read whole, as before
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    fortran = f"npy:{tmp_path / 'f.npy'}"
    monkeypatch.undo()
    np.testing.assert_array_equal(autoencoders.encode(runs[0].dir, fortran, **tiny), whole["codes"])
    lines = (tmp_path / "codes.csv").read_text().splitlines()
    assert len(lines) == 20_001 and lines[0] == "row,code_0,code_1,code_2,label"
    np.testing.assert_allclose([float(v) for v in lines[7].split(",")[1:4]], whole["codes"][6], rtol=1e-7)


def test_rows_far_apart_are_read_one_by_one_to_the_rows_a_mapping_gives(big_npy, monkeypatch):
    """A sample of rows spread over a file is read row by row (a mapping of their span would fault
    in the pages around each as well), to the same rows, scaled and clipped alike."""
    path, x = big_npy
    rows = np.sort(np.random.default_rng(1).choice(len(x), 300, replace=False))
    scaler = (np.full(16, 0.1, np.float32), np.full(16, 0.5, np.float32))
    source = RowStream.from_npy(path).with_scaler(scaler)
    mapped = source[rows]
    reads = []
    real = RowStream._read_apart
    monkeypatch.setattr(RowStream, "_read_apart", lambda self, *a: reads.append(a) or real(self, *a))
    monkeypatch.setattr(stream, "SPARSE_BYTES", 16)  # a row of 16 bytes: these rows lie apart
    assert torch.equal(source[rows], mapped) and reads
    assert float(mapped.max()) == 1.0 and float(mapped.min()) == 0.0  # scaled beyond [0, 1], clipped
    monkeypatch.setattr(stream, "SPARSE_BYTES", 16 * 10**6)
    reads.clear()
    assert torch.equal(source[np.arange(100, 400)], torch.from_numpy(((x[100:400] - 0.1) / 0.5).clip(0, 1)))
    assert not reads  # consecutive rows are mapped


def _reads_of_streams(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows each read of a stream takes, from here on, as they are taken; a failure for a file
    read whole."""
    from autoencoders import trained
    from autoencoders.data import datasets

    read: list[int] = []
    materialise, read_rows = RowStream.materialise, RowStream.read
    monkeypatch.setattr(RowStream, "materialise", lambda self: read.append(len(self)) or materialise(self))
    monkeypatch.setattr(RowStream, "read", lambda self, rows: read.append(len(rows)) or read_rows(self, rows))
    for module in (trained, datasets):
        monkeypatch.setattr(module, "read_data", lambda *args: pytest.fail("the file was read whole"))
    return read


def test_cluster_streams_a_file_over_the_budget_to_the_clusters_it_gives_read_whole(tmp_path, monkeypatch):
    """cluster reads an npy: file over --memory-budget part by part (its baselines a sample of it)
    to the clusters, scores and pixel k-means baseline of the file read whole; only PCA's baseline
    is fitted on the sample rather than every row. DEC and IDEC fine-tune over the stream."""
    rng = np.random.default_rng(0)
    x = rng.random((30_000, 4), dtype=np.float32)  # more rows than the baselines' sample of 20,000
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x[:, 0] > 0.5).astype(np.int64))
    spec, labels = f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "y.npy")
    run = autoencoders.train(
        data=spec, labels=labels, layers=[4, 2], epochs=1, out=str(tmp_path / "ae"), **FAST
    )
    whole = autoencoders.cluster(run.dir, spec, k=2, out=str(tmp_path / "whole"), quiet=True)
    tuned_whole = {
        method: autoencoders.cluster(
            run.dir, spec, method=method, k=2, epochs=2, batch_size=256, quiet=True,
            out=str(tmp_path / f"{method}-whole"),
        )
        for method in ("dec", "idec")
    }  # fmt: skip
    read = _reads_of_streams(monkeypatch)
    streamed = autoencoders.cluster(
        run.dir, spec, k=2, out=str(tmp_path / "streamed"), quiet=True, memory_budget=TINY_BUDGET
    )
    np.testing.assert_array_equal(streamed.labels, whole.labels)
    np.testing.assert_array_equal(streamed.confidence, whole.confidence)
    for name in ("accuracy", "nmi", "ari", "kmeans_inertia", "pixels_kmeans_accuracy", "pixels_kmeans_nmi"):
        assert streamed.summary[name] == whole.summary[name], name
    assert 0.5 < streamed.summary["pca_kmeans_accuracy"] <= 1
    # parts of 8,192 rows, the baselines' sample, 10,000 rows sampled for their units, the figures' rows
    assert 8192 in read and max(read) <= 20_000 < len(x)
    kept = (tmp_path / "streamed" / "clusters.csv").read_text()
    assert kept == (tmp_path / "whole" / "clusters.csv").read_text()
    # DEC and IDEC fine-tune over the stream's shuffled chunks, in another batch order than the
    # rows in memory: the same k-means start, then clusters that score alike
    monkeypatch.setattr(stream, "BLOCK_ROWS", 1024)  # chunks of 4,096 rows: a pass reads several
    for method in ("dec", "idec"):
        options = {"method": method, "k": 2, "epochs": 2, "batch_size": 256, "quiet": True}
        read.clear()
        tuned = autoencoders.cluster(
            run.dir, spec, out=str(tmp_path / method), memory_budget=TINY_BUDGET, **options
        )
        assert read.count(4096) >= 2 * 6 and max(read) <= 20_000, (method, read)  # 2 epochs in chunks
        assert tuned.summary["updates"] == 2 * -(-len(x) // 256)
        in_memory = tuned_whole[method].summary
        assert tuned.summary["kmeans_start_accuracy"] == in_memory["kmeans_start_accuracy"]
        assert abs(tuned.summary["accuracy"] - in_memory["accuracy"]) < 0.02, method


def test_classify_holds_its_labelled_rows_of_a_streamed_file_and_streams_the_rest(tmp_path, monkeypatch):
    """classify with few labels on an npy: file over --memory-budget reads its labelled rows, not the
    training rows; semi and ladder stream the unlabelled ones through their epochs, a chunk at a time.
    With every label, the labelled rows (over the budget) stream too."""
    monkeypatch.setattr(stream, "BLOCK_ROWS", 1024)  # chunks of 4,096 rows: a pass reads several

    rng = np.random.default_rng(0)
    x = rng.random((30_000, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x[:, 0] > 0.5).astype(np.int64))
    spec, labels = f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "y.npy")
    run = autoencoders.train(
        data=spec, labels=labels, layers=[4, 2], epochs=1, out=str(tmp_path / "ae"), **FAST
    )
    # with every label kNN trains nothing: the file read whole gives the classifier a stream gives
    whole = autoencoders.classify(
        run.dir, data=spec, labels=labels, method="knn", quiet=True, out=str(tmp_path / "w")
    )
    read = _reads_of_streams(monkeypatch)
    for method in ("finetune", "semi", "ladder"):
        read.clear()
        result = autoencoders.classify(
            run.dir, data=spec, labels=labels, n_labels=20, method=method, epochs=1, quiet=True,
            memory_budget=TINY_BUDGET, out=str(tmp_path / method),
        )  # fmt: skip
        assert result.metrics["labelled_examples"] == 20
        # the units' sample of 10,000 rows, the validation and test rows, the labelled ones, chunks
        assert 20 in read and max(read) <= 10_000 < 0.7 * len(x), (method, read)
        assert method == "finetune" or read.count(4096) >= 4  # an epoch's training rows, chunk by chunk
    # every training label: the labelled rows, over the budget, stay on disk
    for method in ("finetune", "frozen", "knn"):
        read.clear()
        options = {} if method == "knn" else {"epochs": 1}
        result = autoencoders.classify(
            run.dir, data=spec, labels=labels, method=method, quiet=True, memory_budget=TINY_BUDGET,
            out=str(tmp_path / f"all-{method}"), **options,
        )  # fmt: skip
        # at most the pixels' probe sample of 20,000 of the labelled rows at once
        assert max(read) <= 20_000 < result.metrics["labelled_examples"], (method, read)
    assert result.metrics["test_accuracy"] == whole.metrics["test_accuracy"]
