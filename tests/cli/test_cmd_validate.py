import subprocess

from conftest import ROOT

from ntkbench.cli.main import main


def test_valid_suite_reports_grid_size(capsys):
    assert main(["validate", str(ROOT / "benchmarks.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "trial(s)" in out


def test_valid_task_file(capsys):
    assert main(["validate", str(ROOT / "tasks" / "targets_2d.yaml")]) == 0
    assert "task 'targets_2d'" in capsys.readouterr().out


def test_errors_name_file_line_field_and_exit_2_without_traceback(tmp_path, ntkbench_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks: [oscillatory_1d]\ninitializers:\n  - he_normall\n")
    proc = subprocess.run([*ntkbench_cli, "validate", str(bad)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert f"{bad}:4: initializers[0].name: unknown initializer 'he_normall'" in proc.stderr
    assert "did you mean 'he_normal'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_file(capsys):
    assert main(["validate", "nope.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err
