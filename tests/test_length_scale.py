"""analyze length-scale: the J_λ-optimal receptive-field length scale, checked against a dense
brute-force scan, an explicit-inverse evaluation of its terms, and the revealed-preference law
its global minimisers must obey."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ntkbench.analysis.length_scale import length_scale_curve, monotone_violations
from ntkbench.cli.main import main
from ntkbench.initializers.receptive import (
    DEFAULT_F,
    DEFAULT_S,
    draw_centres,
    input_grid,
    length_scale_gram,
)

GRID = (6, 6)
LAMS = [0.0, 0.3, 0.6, 0.9, 1.0]


def _data(seed: int = 0, n: int = 30):
    """Smooth random images on a 6×6 grid and one-hot targets of 3 classes."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, *GRID))
    images = base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2)  # correlated pixels
    y = np.eye(3)[rng.integers(0, 3, size=n)]
    return images.reshape(n, -1), y


@pytest.fixture(scope="module")
def curve():
    x, y = _data()
    table, scan = length_scale_curve(x, y, GRID, LAMS, centres=4, n_scan=12, seed=1)
    return x, y, table, scan


def test_global_minimiser_beats_a_dense_brute_force_scan(curve):
    x, y, table, _ = curve
    gram = length_scale_gram(x, GRID, DEFAULT_F / DEFAULT_S,
                             draw_centres(GRID, 4, np.random.default_rng(1)))
    dense = np.geomspace(0.06, 57.0, 150)
    terms = np.array([_explicit_terms(gram(float(ell)), y) for ell in dense])
    for row in table.itertuples():
        j_dense = (1 - row.lam) * terms[:, 0] - row.lam * terms[:, 1]
        best = int(np.argmin(j_dense))
        assert row.j_lambda <= j_dense[best] + 1e-7 * abs(j_dense[best]), row
        if 0 < best < len(dense) - 1:  # an interior minimum: the minimiser lies beside it
            assert dense[best - 1] <= row.length_scale <= dense[best + 1], (row, dense[best])
        g, s = _explicit_terms(gram(row.length_scale), y)
        assert row.inverse_term == pytest.approx(g, rel=1e-8)
        assert row.speed_term == pytest.approx(s, rel=1e-10)


def _explicit_terms(H: np.ndarray, y: np.ndarray, reg: float = 1e-6) -> tuple[float, float]:
    """G = tr(Yᵀ(H + reg·I)⁻¹Y) with an explicit inverse, S = tr(YᵀHY): no Cholesky."""
    inverse = np.linalg.inv(H + reg * np.eye(len(H)))
    return float(np.trace(y.T @ inverse @ y)), float(np.trace(y.T @ H @ y))


def test_minimisers_obey_revealed_preference_and_grow_with_lambda(curve):
    *_, table, _ = curve
    assert monotone_violations(table) == []
    assert list(table["lam"]) == LAMS
    ell = table["length_scale"].to_numpy()
    assert np.all(np.diff(ell) >= -1e-9 * ell[:-1])  # S grows with l here: larger fields win
    assert ell[-1] > 10 * ell[0]
    # λ = 1 maximises S alone; S(l) keeps growing, so the minimiser runs to the upper bound.
    assert ell[-1] > 0.9 * 10 * max(GRID)


def test_monotone_check_reports_a_table_that_breaks_the_law():
    table = pd.DataFrame({"lam": [0.0, 0.5, 1.0], "inverse_term": [1.0, 2.0, 1.5],
                          "speed_term": [3.0, 4.0, 5.0]})
    (problem,) = monotone_violations(table)
    assert "inverse_term falls from 2 to 1.5 at λ = 1" in problem


def test_calibration_column_is_newton_from_l0(curve):
    from ntkbench.ntk.objectives import minimize_j_lambda

    x, y, table, _ = curve
    gram = length_scale_gram(x, GRID, DEFAULT_F / DEFAULT_S,
                             draw_centres(GRID, 4, np.random.default_rng(1)))
    row = table.iloc[1]
    direct = minimize_j_lambda(gram, y, row["lam"], DEFAULT_S, bounds=(0.0, 60.0), reg=1e-6)
    assert row["calibrated_length_scale"] == pytest.approx(direct.value, rel=1e-12)
    assert row["calibrated_j_lambda"] >= row["j_lambda"] - 1e-9 * abs(row["j_lambda"])


def test_input_grid_layouts():
    assert input_grid(784, (1, 28, 28)) == (1, (28, 28))
    assert input_grid(64, (8, 8)) == (1, (8, 8))
    assert input_grid(12, None) == (1, (12,))
    assert input_grid(48, (3, 4, 4)) == (3, (4, 4))
    with pytest.raises(ValueError, match="does not describe the 50 inputs"):
        input_grid(50, (7, 7))


def test_cli_on_digits_prints_json_and_writes_the_plot(tmp_path, capsys):
    plot = tmp_path / "ls.svg"
    assert main(["analyze", "length-scale", "--task", "digits", "--batch-size", "24",
                 "--centres", "3", "--scan", "6", "--lams", "0,0.5,1", "--plot", str(plot),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["grid"] == [8, 8] and out["rows_used"] == 24 and len(out["rows"]) == 3
    assert len(out["scan"]) == 6 and out["monotone_violations"] == []
    assert plot.stat().st_size > 5000 and "J_λ" in plot.read_text()
    assert main(["analyze", "length-scale", "--task", "digits", "--batch-size", "24",
                 "--centres", "3", "--scan", "6", "--lams", "0,1", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "J_λ-optimal receptive-field length scale: digits" in text and "G(l*)" in text
    assert main(["analyze", "length-scale", "--task", "digits", "--lams", "0,2",
                 "--no-plot"]) == 2
    assert "--lams must list values in [0, 1]" in capsys.readouterr().err
