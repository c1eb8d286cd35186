"""Figures and the static results site, on a small real run (two tasks × three initializers ×
three seeds of tiny trials)."""

import json
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_trial
from matplotlib.figure import Figure
from scipy import stats as sps

from ntkbench.cli.main import main
from ntkbench.config import DataConfig
from ntkbench.report import figures, leaderboard
from ntkbench.report.across import across_tasks
from ntkbench.runner import run_trials
from ntkbench.store import load_results

INITS = ("he_normal", "lecun_normal", "orthogonal")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    trials = []
    for task, frequency in (("osc_low", 1.0), ("osc_high", 3.0)):
        data = DataConfig(generator="oscillatory_1d",
                          params={"frequency": frequency, "n_samples": 40, "train_fraction": 0.5})
        trials += [tiny_trial(initializer=i, seed=s, task=task, data=data)
                   for i in INITS for s in range(3)]
    run_trials(trials, out, progress=False)
    return out


@pytest.fixture(scope="module")
def df(run_dir):
    return load_results(run_dir)


@pytest.fixture(scope="module")
def site(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    assert main(["report", str(run_dir), "--out", str(out), "--no-progress"]) == 0
    return out


def test_learning_curve_is_the_median_over_seeds(df):
    fig = figures.learning_curves(df, "osc_low")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines()}
    assert set(lines) == set(INITS)
    rows = df[(df.task == "osc_low") & (df.init_label == "he_normal")]
    curves = np.vstack([np.asarray(c, dtype=float) for c in rows["curve_train_loss"]])
    steps = np.asarray(rows["curve_step"].iloc[0], dtype=float)
    x, y = lines["he_normal"].get_data()
    np.testing.assert_allclose(x, steps[steps > 0])
    np.testing.assert_allclose(y, np.median(curves, axis=0)[steps > 0], rtol=1e-12)
    assert len(ax.collections) == len(INITS)  # one IQR band each


def test_spectrum_figure_is_the_median_stored_spectrum(df):
    fig = figures.ntk_spectrum(df, "osc_low")
    init_ax, final_ax = fig.axes
    assert init_ax.get_xscale() == init_ax.get_yscale() == "log"
    rows = df[(df.task == "osc_low") & (df.init_label == "orthogonal")]
    lam = np.median(np.vstack([np.asarray(v) for v in rows["ntk_init_spectrum"]]), axis=0)
    ranks = np.asarray(rows["ntk_spectrum_rank"].iloc[0])
    (line,) = [ln for ln in init_ax.get_lines() if ln.get_label().startswith("orthogonal")]
    x, y = line.get_data()
    np.testing.assert_allclose(y, lam[lam > 0], rtol=1e-12)
    np.testing.assert_allclose(x, ranks[lam > 0])
    assert len(final_ax.get_lines()) == len(INITS)


def test_ntk_curves_show_alignment_residual_and_drift(df):
    fig = figures.ntk_curves(df, "osc_high")
    assert len(fig.axes) == 4
    rows = df[(df.task == "osc_high") & (df.init_label == "he_normal")]
    expected = np.median(np.vstack([np.asarray(v) for v in rows["ntk_centered_alignment"]]),
                         axis=0)
    steps = np.asarray(rows["ntk_step"].iloc[0])
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("he_normal")]
    np.testing.assert_allclose(line.get_ydata(), expected[steps > 0], rtol=1e-12)
    assert fig.axes[3].get_yscale() == "symlog"


def test_residual_spectrum_is_the_median_band_energy_relative_to_step_0(df):
    fig = figures.residual_spectrum(df, "osc_low")
    assert [ax.get_title() for ax in fig.axes] == sorted(INITS)
    rows = df[(df.task == "osc_low") & (df.init_label == "lecun_normal")]
    energy = np.stack([np.asarray(e, dtype=float) for e in rows["ntk_residual_band_energy"]])
    expected = np.median(energy / energy[:, :1, :], axis=0)
    ax = fig.axes[sorted(INITS).index("lecun_normal")]
    lines = ax.get_lines()
    assert len(lines) == energy.shape[2]  # one line per band
    np.testing.assert_allclose(lines[0].get_ydata(), expected[:, 0], rtol=1e-12)
    assert lines[0].get_label() == "ranks 1"


def test_fourier_residual_spectrum_uses_the_loss_checkpoints_and_frequency_bands(df):
    fig = figures.residual_spectrum(df, "osc_low", basis="fourier")
    rows = df[(df.task == "osc_low") & (df.init_label == "lecun_normal")]
    energy = np.stack([np.asarray(e, dtype=float)
                       for e in rows["fourier_residual_band_energy"]])
    assert energy.shape[1] == len(rows["curve_step"].iloc[0])
    rel = energy / np.where(energy[:, :1, :] > 0, energy[:, :1, :], np.nan)
    with warnings.catch_warnings():  # a band negative in every seed: all-NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(np.where(rel > 0, rel, np.nan), axis=0)
    ax = fig.axes[sorted(INITS).index("lecun_normal")]
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines[:2]] == ["|k| 1", "|k| 2–3"]  # no mean (k = 0)
    assert len(lines) == energy.shape[2] - 1
    for b in (1, 2):
        np.testing.assert_allclose(lines[b - 1].get_ydata(), expected[:, b], rtol=1e-12)
    assert "Fourier frequencies" in fig.get_suptitle()
    with pytest.raises(ValueError, match="basis must be one of"):
        figures.residual_spectrum(df, "osc_low", basis="wavelet")


def test_sweep_values_become_part_of_the_figure_labels():
    frame = pd.DataFrame({"initializer": ["a", "a", "b"], "init_label": ["a", "a", ""],
                          "sweep_label": ["model.depth=2", "model.depth=4", "model.depth=2"]})
    assert figures.trial_labels(frame).tolist() == ["a model.depth=2", "a model.depth=4",
                                                    "b model.depth=2"]
    assert figures.trial_labels(frame.assign(sweep_label="")).tolist() == ["a", "a", "b"]


def test_linearized_gap_figure_draws_train_and_test(df):
    fig = figures.linearized_gap(df, "osc_low")
    (ax,) = fig.axes
    styles = sorted(line.get_linestyle() for line in ax.get_lines())
    assert styles == sorted(["--"] * len(INITS) + ["-"] * len(INITS))
    assert ax.get_ylim()[1] <= figures.GAP_CLIP * 1.0001 or all(
        np.nanmax(line.get_ydata()) <= figures.GAP_CLIP for line in ax.get_lines())


def test_one_colour_per_initializer_in_every_figure(df):
    colors = figures.palette(df["init_label"])
    assert len(set(colors.values())) == len(INITS)
    for fig in (figures.learning_curves(df, "osc_high", colors=colors),
                figures.learning_curves(df, "osc_high", quantity="test_metric", colors=colors)):
        for line in fig.axes[0].get_lines():
            assert line.get_color() == colors[line.get_label().split(" (")[0]]


def test_predictor_scatter_reports_scipys_spearman(df):
    measure = "ntk_init.centered_alignment"
    fig = figures.predictor_scatter(df, "osc_low", measure)
    ok = df[(df.task == "osc_low") & (df.status == "ok")]
    rho = sps.spearmanr(ok[measure], ok["final_test_metric"]).statistic
    assert f"ρ = {rho:.2f}" in fig.axes[0].get_title()


def test_across_task_figures(df):
    (summary,) = across_tasks(leaderboard(df))
    fig = figures.performance_profile(summary)
    assert {line.get_label() for line in fig.axes[0].get_lines()} == set(INITS)
    fig = figures.critical_difference(summary)
    assert "Friedman p" in fig.axes[0].get_title()


def test_unknown_task_is_a_clear_error(df):
    with pytest.raises(ValueError, match="no trials of task 'nope'"):
        figures.learning_curves(df, "nope")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets, self.images = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.targets.append(attrs["href"])


def _pages(site: Path) -> list[Path]:
    return sorted(site.glob("*.html"))


def test_site_pages_link_only_to_local_files_that_exist(site, df):
    pages = _pages(site)
    assert [p.name for p in pages] == ["index.html", "task-osc_high.html", "task-osc_low.html"]
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text  # offline: no CDN, no web
        parser = _Links()
        parser.feed(text)
        for target in parser.images + parser.targets:
            assert (site / target).is_file(), (page.name, target)
        if page.name != "index.html":
            # 2 curves, kernel, spectrum, residual spectrum (NTK eigenvectors and Fourier
            # bands: the oscillatory tasks declare their input box), linearization gap, layer
            # share, predictor
            assert len(parser.images) == 9
            assert any(i.endswith("-fourier-spectrum.svg") for i in parser.images)
            records = [t for t in parser.targets if t.startswith("trials/")]
            assert len(records) == len(INITS) * 3
            record = json.loads((site / records[0]).read_text())
            assert record["task"] == page.stem.removeprefix("task-")
    for svg in (site / "figures").glob("*.svg"):
        assert (svg.with_suffix(".pdf")).is_file()


def test_site_index_has_provenance_and_the_across_task_table(site, df):
    text = (site / "index.html").read_text()
    for field in ("suite", "ntkbench", "commit", "libraries", "device", "report built"):
        assert f"<td>{field}</td>" in text
    assert "torch " + df["versions.torch"].iloc[0] in text
    assert "Friedman χ²" in text and "Mean rank over 2 tasks" in text
    csv = pd.read_csv(site / "leaderboard.csv")
    assert {"metric_ci_low", "top_group", "ntkbench_commit"} <= set(csv.columns)
    assert len(csv) == 2 * (len(INITS) + 1)  # and a predict-the-mean row per task
    assert (csv["status"] == "reference").sum() == 2


def test_report_without_out_writes_into_the_run_dir(run_dir, capsys, tmp_path, monkeypatch):
    """Where the command puts the site (building one is what the other tests check: here a
    recording stand-in saves the 20 s a full build takes)."""
    from ntkbench.report import site

    calls = []

    def build(run_dirs, out, progress=None):
        calls.append((list(run_dirs), Path(out)))
        Path(out).mkdir(parents=True)
        (Path(out) / "index.html").write_text("<html></html>")
        return Path(out) / "index.html"

    monkeypatch.setattr(site, "build_site", build)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert main(["report", str(copy), "--no-progress"]) == 0
    assert calls == [([str(copy)], copy / "site")]
    assert str(copy / "site" / "index.html") in capsys.readouterr().out


_CHECK = """<script>
window.addEventListener("load", () => {
  const bad = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                  .map(i => i.getAttribute("src"));
  document.body.setAttribute("data-images", String(document.images.length));
  document.body.setAttribute("data-broken", JSON.stringify(bad));
});
</script>
</body>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page: Path) -> tuple[list[str], int, list[str]]:
    """Console lines, number of images and the images that did not load, of ``page`` in
    headless Chromium."""
    # A copy of the page with a checker script next to it; the site itself has no scripts.
    probe = page.with_name(f"_probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", _CHECK))
    try:
        result = subprocess.run(
            [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--enable-logging=stderr", "--v=1", "--virtual-time-budget=10000", "--dump-dom",
             probe.as_uri()], capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    match = re.search(r'data-images="(\d+)" data-broken="([^"]*)"', result.stdout)
    assert match, (page.name, result.stdout[-500:], result.stderr[-2000:])
    return console, int(match.group(1)), json.loads(match.group(2).replace("&quot;", '"'))


needs_chromium = pytest.mark.skipif(
    _chromium() is None,
    reason="needs Debian's chromium (apt-get install chromium) to render the site headless")


@needs_chromium
def test_site_renders_in_headless_chromium_without_errors(site):
    for page in _pages(site):
        console, n_images, broken = _render(page)
        assert console == [], (page.name, console)
        assert n_images == len(_links_of(page).images) > 0
        assert broken == [], page.name


@needs_chromium
def test_the_chromium_check_sees_a_missing_image_and_a_console_error(site, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / "figures" / "osc_low-torch-train-loss.svg").unlink()
    page = copy / "task-osc_low.html"
    page.write_text(page.read_text().replace("</h1>", "</h1><script>console.error('x')</script>"))
    console, _, broken = _render(page)
    assert broken == ["figures/osc_low-torch-train-loss.svg"]
    assert len(console) == 1


def _links_of(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser
