import pytest
from conftest import tiny_trial

from ntkbench.cli.main import main
from ntkbench.runner import run_trials


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    trials = [tiny_trial(initializer=i, seed=s) for i in ("he_normal", "lecun_normal")
              for s in range(2)]
    run_trials(trials, out, progress=False)
    return out


@pytest.mark.parametrize("fmt, marker, label", [
    ("md", "| ", "lecun_normal"), ("html", "<table", "lecun_normal"),
    ("latex", r"\toprule", r"lecun\_normal"), ("csv", "metric_mean", "lecun_normal")])
def test_each_format_to_stdout_and_file(run_dir, tmp_path, capsys, fmt, marker, label):
    assert main(["leaderboard", str(run_dir), "--format", fmt]) == 0
    text = capsys.readouterr().out
    assert marker in text and label in text
    dest = tmp_path / f"board.{fmt}"
    assert main(["leaderboard", str(run_dir), "--format", fmt, "--out", str(dest)]) == 0
    assert dest.read_text().strip() == text.strip()


def test_missing_run_dir_exit_2(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_formats_are_the_renderers_formats():
    import subprocess
    import sys

    from ntkbench.cli.cmd_leaderboard import FORMATS
    from ntkbench.report.render import FORMATS as RENDERED

    assert FORMATS == RENDERED
    # The reason the CLI spells them out: the command line stays free of pandas until used.
    code = "import sys, ntkbench.cli.main; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
