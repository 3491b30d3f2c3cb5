"""report.html: self-contained (every figure embedded), honest tables, and it renders in a browser."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pytest
from helpers import FAST

from autoencoders.cli import main
from autoencoders.figures.report import COMPARED, DRAWN, MEANING, SAVED, _active


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_train_writes_a_self_contained_report(digits_run):
    page = (digits_run.dir / "report.html").read_text()
    images = _images(page)
    expected = sum((digits_run.dir / name).is_file() for name in SAVED) + len(DRAWN)
    assert len(images) == page.count("<img") == expected
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in images)
    text = re.sub(r'src="data:image/png;base64,[^"]*"', "", page)  # a PNG's bytes may spell anything
    assert "http" not in text and "<script" not in text  # loads nothing, runs nothing
    m = digits_run.metrics
    for label, *keys in COMPARED:
        row = re.search(rf"<td>{re.escape(label.format(item='image'))}</td>(.*?)</tr>", page).group(1)
        for key in keys:
            assert (f"{m[key]:.4g}" if key else "–") in row, (label, key)
        # the best of the row as shown in bold: the lowest error, the highest score
        shown = [f"{m[key]:.4g}" for key in keys if key]
        best = (min if "lower is better" in label else max)(shown, key=float)
        assert re.findall(r"<b>([^<]*)</b>", row) == [v for v in shown if float(v) == float(best)], label
    for name, _ in MEANING.values():  # and what each row measures, below the table
        assert f"<li><b>{name}</b>: " in page
    p, n = m["linear_probe_accuracy"], m["n_test"]  # and how far an accuracy moves by chance
    near = (n * p + 2) / (n + 4)  # Agresti and Coull's: a perfect score moves too
    assert f"an accuracy on {n} test images moves by about {(near * (1 - near) / (n + 4)) ** 0.5:.3f}" in page


def test_the_best_of_a_row_is_the_best_as_shown():
    import math

    from autoencoders.figures.report import _best

    assert _best([12.3449, 12.3441, None], lower=True) == {1, 2}  # both read 12.34: both in bold
    assert _best([math.inf, 30.0, None], lower=False) == {1}  # a perfect PSNR is the best
    assert _best([math.nan, 0.9, 0.8], lower=False) == {2}  # NaN is never the best
    assert _best([0.9, None, None], lower=False) == set()  # nothing to compare with


def test_the_settings_table_shows_the_options_as_given_however_the_report_is_written(digits_run, tmp_path):
    from autoencoders.figures.report import write_report
    from autoencoders.trained import open_run

    run = open_run(digits_run.dir)
    given = run.cfg.train.precision
    run.cfg.train.precision = "bf16" if given != "bf16" else "fp32"  # as training resolves auto in memory
    page = write_report(digits_run.dir, tmp_path / "r.html", run=run).read_text()
    assert f"<tr><td>precision</td><td>{given}</td><td>auto</td></tr>" in page  # beside its default
    changed, defaults = page.split("Left at their defaults")
    assert '<tr><td>epochs</td><td class="num">3</td><td class="num">100</td></tr>' in changed
    assert "<tr><td>optimizer</td><td>adam</td></tr>" in defaults and "optimizer" not in changed


def test_report_command_writes_where_told(digits_run, tmp_path, capsys):
    out = tmp_path / "r.html"
    with pytest.raises(SystemExit) as done:
        main(["report", str(digits_run.dir), "--out", str(out)])
    assert done.value.code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(SystemExit):
        main(["report", str(digits_run.dir), "--out", str(tmp_path / "r.pdf")])
    assert "ending in .html" in capsys.readouterr().err


def test_a_report_written_again_keeps_the_figures_drawn_from_the_same_weights(
    digits_run, tmp_path, monkeypatch
):
    from safetensors.torch import load_file, save_file

    from autoencoders.figures import report
    from autoencoders.io.checkpoint import file_sha256

    run_dir = tmp_path / "run"
    shutil.copytree(digits_run.dir, run_dir)
    before = _images((run_dir / "report.html").read_text())
    drawn, draw = [], report.draw

    def counted(run, tmp, what, *args, **kwargs):
        drawn.append(what)
        return draw(run, tmp, what, *args, **kwargs)

    monkeypatch.setattr(report, "draw", counted)
    report.write_report(run_dir, keep_drawn=True)  # as classify or cluster writes it again: nothing drawn
    assert drawn == [] and _images((run_dir / "report.html").read_text()) == before
    report.write_report(run_dir, tmp_path / "r.html", keep_drawn=True)  # elsewhere too
    assert drawn == [] and _images((tmp_path / "r.html").read_text()) == before
    report.write_report(run_dir, tmp_path / "r.html")  # as the report command writes it: drawn
    assert drawn == list(report.DRAWN)
    weights = load_file(run_dir / "model.safetensors")
    weights = {k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, run_dir / "model.safetensors")  # other weights, other figures: drawn again
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["sha256"]["model.safetensors"] = file_sha256(run_dir / "model.safetensors")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    lacking = r'<figure><img alt="Test codes in 2-D[^"]*"', "<figure>"  # a page without one of them
    damaged = (
        r'(<img alt="First-layer weights[^"]*" src="data:image/png;base64,)',
        r"\1!",
    )  # or with it damaged
    for edit in (None, lacking, damaged):  # None: drawn from the earlier weights
        if edit is not None:
            (run_dir / "report.html").write_text(re.sub(*edit, (run_dir / "report.html").read_text()))
        drawn.clear()
        report.write_report(run_dir, keep_drawn=True)
        assert drawn == list(report.DRAWN)


CHECK = """<script>
window.onerror = () => { document.title = "SCRIPT ERROR"; };
window.addEventListener("load", () => {
  const all = [...document.images];
  const shown = all.filter((i) => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0);
  document.title = `IMAGES ${all.length} SHOWN ${shown.length}`;
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian package chromium)")
def test_report_renders_every_image_in_headless_chromium(digits_run, tmp_path):
    page = (digits_run.dir / "report.html").read_text()
    probe = tmp_path / "probe.html"  # the report plus a checker run after the page has loaded
    probe.write_text(page.replace("</body>", CHECK + "</body>"))
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", done.stdout).group(1)
    n = page.count("<img")
    assert title == f"IMAGES {n} SHOWN {n}", title


def test_a_classifier_beside_the_run_gets_a_row_in_its_report(digits_run, tmp_path):
    import autoencoders

    run_dir = tmp_path / "run"
    shutil.copytree(digits_run.dir, run_dir)
    result = autoencoders.classify(run_dir, method="knn", n_labels=30, quiet=True)
    page = (run_dir / "report.html").read_text()  # written anew by classify
    row = re.search(rf"<td>{result.out.name}</td><td>knn</td>(.*?)</tr>", page).group(1)
    m = result.metrics
    assert f"{m['test_accuracy']:.4g}" in row and f"{m['pixels_linear_probe_accuracy']:.4g}" in row


def test_a_damaged_classifier_or_clustering_is_left_out_of_the_report_with_a_warning(digits_run, tmp_path):
    import autoencoders
    from autoencoders.errors import DataWarning
    from autoencoders.figures.report import write_report

    run_dir = tmp_path / "run"
    shutil.copytree(digits_run.dir, run_dir)
    kept = autoencoders.classify(run_dir, method="knn", n_labels=30, quiet=True)
    damaged = autoencoders.classify(run_dir, method="knn", n_labels=40, quiet=True)
    clustering = autoencoders.cluster(run_dir, k=3, quiet=True)
    (damaged.out / "metrics.json").write_text("{")
    summary = json.loads((clustering.out / "clusters.json").read_text())
    (clustering.out / "clusters.json").write_text(
        json.dumps({k: v for k, v in summary.items() if k != "seconds"})
    )
    with pytest.warns(DataWarning) as said:
        write_report(run_dir)
    assert sorted(str(w.message) for w in said)[1] == (
        f"the report leaves out the clustering {clustering.out}: it lacks seconds"
    )
    (clustering.out / "clusters.json").write_text("[]")
    with pytest.warns(DataWarning) as said:
        write_report(run_dir)
    assert sorted(str(w.message).split(":")[0] for w in said) == [
        f"the report leaves out the classifier {damaged.out}",
        f"the report leaves out the clustering {clustering.out}",
    ]
    page = (run_dir / "report.html").read_text()
    assert f"<td>{kept.out.name}</td>" in page and damaged.out.name not in page
    assert clustering.out.name not in page


def test_the_title_names_the_pieces_a_run_composes(tmp_path):
    import autoencoders

    settings = {"layers": [64, 32, 8], "epochs": 1, "corruption": "masking", "noise": 0.2, "top_k": 4}
    settings |= {"contractive": 0.1, "contractive_projections": 2}
    run = autoencoders.train(out=str(tmp_path / "r"), **settings, **FAST)
    title = re.search("<h1>(.*)</h1>", (run.dir / "report.html").read_text()).group(1)
    assert title == (
        "dense autoencoder, denoising (masking 0.2), contractive (0.1, 2 projections), k-sparse (k = 4), "
        "on digits"
    )


def test_a_vae_report_says_how_many_units_are_active_and_what_no_nll_goes_below(tmp_path):
    import autoencoders

    run = autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 4], epochs=2, iw_samples=4, out=tmp_path / "v", **FAST
    )
    page, m = (run.dir / "report.html").read_text(), run.metrics
    assert _active(m["active_units"], 4, "image") in page
    assert f"own binary entropy, below which no model goes: {m['test_bce_floor']:.2f})" in page
    assert m["test_nll"] > m["test_bce_floor"]
    assert "4 samples each on 359 test images" in page
    sampled = autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 4], epochs=2, iw_samples=4, nll_rows=50,
        out=tmp_path / "s", **FAST,
    )  # fmt: skip
    page, m = (sampled.dir / "report.html").read_text(), sampled.metrics
    assert m["nll_rows"] == 50 and m["nll_rows_bce_floor"] != m["test_bce_floor"]  # the NLL's rows' floor
    assert f"4 samples each on 50 test images, ± {m['test_nll_se']:.2f}; the images&#x27; own binary" in page
    assert f"below which no model goes: {m['nll_rows_bce_floor']:.2f})" in page


def test_active_units_are_told_in_words_that_fit_their_count():
    assert _active(9, 16, "image").startswith("9 of the 16 code units are active (posterior mean varying")
    assert _active(7, 8, "image").endswith("; the other stays near the prior for every image.")
    assert _active(1, 8, "row").startswith("1 of the 8 code units is active")
    assert (
        _active(0, 8, "image")
        == "None of the 8 code units is active: each stays near the prior for every image."
    )
    assert _active(2, 2, "image").startswith("All 2 code units are active (each one's posterior mean")
    assert _active(0, 1, "image") == "The code unit stays near the prior for every image: not active."
