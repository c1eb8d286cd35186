import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from ntkbench.analysis import variance_flow as vf
from ntkbench.cli.main import main

SVG = "{http://www.w3.org/2000/svg}"
SMALL = ["--depth", "6", "--width", "256", "--n-inputs", "32"]


def _rows(out: str) -> list[list[str]]:
    """The table rows ``layer theory measured ratio`` of the text output."""
    return [line.split() for line in out.splitlines()
            if line.split() and line.split()[0].isdigit()]


def test_variance_flow_prints_fixed_points_and_table_and_writes_an_svg(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["analyze", "variance-flow", "--activation", "tanh", "--init", "xavier_normal",
            "--init-param", "gain=2", *SMALL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "gain c = σ_w·√fan_in = 2.00" in out
    zero, star = (ln for ln in out.splitlines() if ln.strip().startswith("s* ="))
    assert "s* = 0 " in zero and "unstable" in zero
    assert "s* = 0.728" in star and star.rstrip().endswith("stable")
    rows = _rows(out)
    assert [int(r[0]) for r in rows] == list(range(7))
    assert rows[0][1:] == ["1", "1", "1.000"]  # the inputs have RMS 1 by construction

    path = tmp_path / "variance_flow_tanh_xavier_normal.svg"
    assert f"plot saved to {path.name}" in out
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"


def test_variance_flow_figure_draws_theory_and_measurements():
    from ntkbench.analysis.plots import variance_flow_figure

    theory, measured = [1.0, 0.8, 0.75, 0.73], [1.0, 0.81, float("nan"), 0.7]
    fig = variance_flow_figure("tanh", "xavier_normal", 512, theory, measured)
    (ax,) = fig.axes
    line, markers = ax.get_lines()
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "layer l"
    assert list(line.get_ydata()) == theory and line.get_label() == "theory (infinite width)"
    # The nan cannot sit on a log axis: left out, the others kept at their layers.
    assert list(markers.get_xdata()) == [0, 1, 3] and markers.get_linestyle() == "None"
    assert markers.get_label() == "measured (width 512)"


def test_relu_he_reports_the_line_of_fixed_points_and_no_plot_writes_nothing(
        tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["analyze", "variance-flow", "--activation", "relu", "--init", "he_normal",
            "--no-plot", *SMALL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "every s is a fixed point (marginal: g′ = 1)" in out
    assert "plot saved" not in out and list(tmp_path.iterdir()) == []


def test_json_output_parses_and_agrees_with_the_library(tmp_path, capsys):
    plot = tmp_path / "flow.svg"
    argv = ["analyze", "variance-flow", "--activation", "tanh", "--init", "xavier_normal",
            "--init-param", "gain=2", "--plot", str(plot), "--json", *SMALL]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["plot"] == str(plot) and plot.is_file()
    assert r["init_params"] == {"gain": 2} and r["in_dim"] == 256
    assert [row["layer"] for row in r["layers"]] == list(range(7))
    expected = vf.fixed_points("tanh", r["gain"],
                               rtol=5 * r["gain_stderr"] / r["gain"]).points
    assert [p["s"] for p in r["fixed_points"]["points"]] == [p.s for p in expected]
    assert [p["stable"] for p in r["fixed_points"]["points"]] == [False, True]
    theory = vf.iterate("tanh", r["gain"], 1.0, 6, c_first=r["first_layer_gain"])
    assert [row["theory"] for row in r["layers"]] == pytest.approx(list(theory), rel=1e-12)


@pytest.mark.parametrize(("extra", "message"), [
    (["--activation", "tanhh", "--init", "xavier_normal"], "did you mean 'tanh'?"),
    (["--activation", "tanh", "--init", "xavier_normall"], "did you mean 'xavier_normal'"),
    (["--activation", "tanh", "--init", "xavier_normal", "--init-param", "gian=2"],
     "unknown parameter 'gian' for initializer 'xavier_normal' — did you mean 'gain'?"),
    (["--activation", "tanh", "--init", "xavier_normal", "--init-param", "gain"],
     "--init-param expects KEY=VALUE"),
    (["--activation", "tanh", "--init", "xavier_normal", "--depth", "1"],
     "--depth must be >= 2"),
    (["--activation", "tanh", "--init", "xavier_normal", "--plot", "no/such/dir/x.svg"],
     "folder 'no/such/dir' does not exist"),
])
def test_mistakes_exit_2_with_a_helpful_message(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "variance-flow", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ntkbench analyze: error: ") and message in err


def test_analyze_needs_an_analysis(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze"])
    assert exc.value.code == 2 and "ANALYSIS" in capsys.readouterr().err


def test_console_run_reports_unknown_initializer_without_traceback(ntkbench_cli, tmp_path):
    proc = subprocess.run([*ntkbench_cli, "analyze", "variance-flow", "--activation", "relu",
                           "--init", "he_normall", "--no-plot"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did you mean 'he_normal'" in proc.stderr


def test_a_data_dependent_initializer_is_calibrated_on_the_analysis_inputs(capsys):
    # LSUV rescales every layer to unit pre-activation variance on the very inputs measured,
    # so the measured RMS of each tanh layer is √E[tanh(z)²] = 0.628 with Var z = 1, up to the
    # non-Gaussian shape of z at finite width: at most 0.005 off over seeds 0-11, hence 0.02.
    # Without the rescaling the orthonormal tanh layers decay towards 1/√(2l) (0.29 at l = 6).
    argv = ["analyze", "variance-flow", "--activation", "tanh", "--init", "lsuv", "--no-plot",
            "--json", *SMALL]
    assert main(argv) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    expected = vf.second_moment("tanh", 1.0) ** 0.5
    for layer in layers[1:]:
        assert abs(layer["measured"] - expected) < 0.02, layer


def test_isometry_prints_measured_and_predicted_moments_and_json_agrees(tmp_path, capsys):
    argv = ["analyze", "isometry", "--activation", "linear", "--init", "orthogonal",
            "--init-param", "gain=1.1", "--depth", "3", "--width", "32", "--n-inputs", "4",
            "--plot", str(tmp_path / "iso.svg")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    # Orthogonal linear layers: m₁ = gain^(2l) measured and predicted, σ² = 0, max s = gain^l.
    for layer, row in enumerate(rows, start=1):
        assert float(row[1]) == pytest.approx(1.1 ** (2 * layer), rel=1e-3)
        assert float(row[2]) == pytest.approx(1.1 ** (2 * layer), rel=1e-3)
        assert abs(float(row[3])) < 1e-9 and abs(float(row[4])) < 1e-9
        assert float(row[5]) == pytest.approx(1.1 ** layer, rel=1e-3)
    assert ET.parse(tmp_path / "iso.svg").getroot().tag == SVG + "svg"
    assert main([*argv[:-2], "--no-plot", "--json", "--input-rms", "0.5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_rms"] == 0.5 and r["plot"] is None
    # Inputs of RMS 0.5 through linear layers: the Jacobian does not depend on them.
    assert [row["theory_mean_sq"] for row in r["layers"]] == pytest.approx(
        [1.1 ** (2 * layer) for layer in (1, 2, 3)], rel=1e-12)


def test_deep_limit_on_a_task_file_prints_one_row_per_depth(tmp_path, capsys):
    task = tmp_path / "tiny.yaml"
    task.write_text("name: tiny\ndata:\n  generator: digits\n  params: {classes: [3, 8], "
                    "targets: pm1, n_train: 60, n_test: 40}\nmetric: test_mse\n")
    argv = ["analyze", "deep-limit", "--task", str(task), "--depths", "1,2048",
            "--param", "n_test=30", "--plot", str(tmp_path / "deep.svg")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "60 train / 30 test" in out
    rows = [line.split() for line in out.splitlines() if line.split()
            and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2048]
    # 3 vs 8 from 60 digits: the shallow kernel classifies (0.87); at depth 2048 every test
    # point gets the majority class (its accuracy 0.43) and the kernel is near its limit 1/4.
    assert float(rows[0][1]) > 0.8 and float(rows[0][2]) < 0.8
    # columns: depth, test acc., = majority, = weighted vote, off-diag mean, off-diag std
    assert float(rows[1][2]) == 1.0 and float(rows[1][1]) < 0.5
    assert float(rows[1][3]) in (0.0, 1.0)  # one class everywhere: the weighted vote's or not
    assert abs(float(rows[1][4]) - 0.25) < 3e-3
    assert (tmp_path / "deep.svg").is_file()
    assert main([*argv[:4], "--depths", "1,x", "--no-plot"]) == 2
    assert "--depths expects integers" in capsys.readouterr().err
    assert main([*argv[:4], "--param", "n_trian=5", "--no-plot"]) == 2
    assert "did you mean 'n_train'" in capsys.readouterr().err


def test_width_fit_reads_a_run_directory(tmp_path, capsys):
    from conftest import tiny_trial

    from ntkbench.config import ModelConfig, TrainingConfig
    from ntkbench.runner import run_trials

    trials = [tiny_trial(seed=s, model=ModelConfig(width=w, depth=1, activation="relu",
                                                   parameterization="ntk"),
                         training=TrainingConfig(lr=0.1, steps=1))
              for w in (32, 512) for s in range(2)]
    run_trials(trials, tmp_path, progress=False)
    assert main(["analyze", "width", str(tmp_path), "--json"]) == 0
    (fit,) = json.loads(capsys.readouterr().out)
    assert fit["widths"] == [32, 512] and fit["n_points"] == 4
    assert -1.0 < fit["exponent"] < -0.2  # n^(-1/2) within the noise of 4 points
    assert main(["analyze", "width", str(tmp_path)]) == 0
    assert "exponent p [95% CI]" in capsys.readouterr().out
