from ntkbench.cli.main import main


def test_list_initializers_shows_params_defaults_and_origin(capsys):
    assert main(["list", "initializers"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("normal "))
    assert "mean: float = 0.0" in line and "std: float = 1.0" in line and "[builtin]" in line
    for name in ("zeros", "ones", "constant", "uniform", "xavier_normal", "xavier_uniform",
                 "he_normal", "he_uniform", "lecun_normal", "orthogonal"):
        assert any(ln.startswith(name + " ") for ln in out.splitlines()), name


def test_list_tasks_backends_metrics(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "oscillatory_1d" in out and "frequency: float = 4.0" in out
    assert "targets_2d" in out and "seed" not in out
    assert main(["list", "backends"]) == 0
    assert "torch" in capsys.readouterr().out
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "test_mse" in out and "lower is better" in out and "test_accuracy" in out
