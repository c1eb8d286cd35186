from ntkbench.cli.main import main


def test_list_initializers_shows_params_defaults_and_origin(capsys):
    assert main(["list", "initializers"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("normal "))
    assert "mean: float = 0.0" in line and "std: float = 1.0" in line and "[builtin]" in line
    for name in ("zeros", "ones", "constant", "uniform", "xavier_normal", "xavier_uniform",
                 "he_normal", "he_uniform", "lecun_normal", "orthogonal"):
        assert any(ln.startswith(name + " ") for ln in out.splitlines()), name


# Every initializer issue 5 asks for, with a word of its reference in the summary line.
LIBRARY = {
    "truncated_normal": "Truncated", "lecun_uniform": "LeCun", "sparse": "Martens",
    "identity": "Identity", "eye": "Identity", "torch_default": "PyTorch",
    "flax_default": "Flax", "orthogonal": "Saxe", "delta_orthogonal": "Xiao", "zerO": "Zhao",
    "siren": "Sitzmann", "structured_rf": "Pandey", "structured_rf_incompatible": "Pandey",
    "structured_rf_ntk": "J_λ", "go": "Wang & Perdikaris", "lsuv": "Mishkin",
    "metainit": "Dauphin", "glorot_normal": "Glorot", "kaiming_uniform": "He et al.",
}
DATA_DEPENDENT = {"lsuv", "go", "metainit", "structured_rf_ntk"}


def test_list_initializers_shows_the_library_with_references(capsys):
    assert main(["list", "initializers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, word in LIBRARY.items():
        i = next(i for i, ln in enumerate(lines) if ln.startswith(name + " "))
        assert word in lines[i + 1], (name, lines[i + 1])
        assert ("data-dependent]" in lines[i]) == (name in DATA_DEPENDENT), lines[i]


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


def test_list_suites_names_the_built_in_suites_their_sizes_and_variants(capsys):
    from ntkbench.spec import load_suite
    from ntkbench.spec.locations import builtin_suites

    assert main(["list", "suites"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for path in builtin_suites():
        suite = load_suite(path)
        line = next(ln for ln in lines if ln.startswith(path.stem + " "))
        assert f" {len(suite.trials())} trials" in line
        assert ("variants: full" in line) == ("full" in suite.variants), line
    assert any(ln.startswith("receptive_fields ") and "variants: full" in ln for ln in lines)
