"""The dynamical-isometry table of REPRODUCTION.md §2: Gaussian vs orthogonal weights, linear,
ReLU and tanh MLPs at initialization, squared singular values of the input–output Jacobian at
depths 1, 8 and 32 beside the free-probability prediction.

    python scripts/isometry_table.py            # about a minute on 2 CPU cores

Each row is one `ntkbench analyze isometry` setting (width 256, 32 inputs, seed 0).
"""

from __future__ import annotations

import math

import numpy as np
from tabulate import tabulate

from ntkbench.analysis import isometry as iso
from ntkbench.analysis import variance_flow as vf
from ntkbench.initializers import initialize
from ntkbench.models import MLP

WIDTH, DEPTH, SHOW = 256, 32, (1, 8, 32)
# (activation, input RMS, Gaussian init and params, orthogonal params): critical scales.
SETTINGS = [
    ("linear", 1.0, ("xavier_normal", {}), {"gain": 1.0}),
    ("relu", 1.0, ("he_normal", {}), {"gain": math.sqrt(2.0)}),
    ("tanh", 0.1, ("xavier_normal", {"gain": 1.05}), {"gain": 1.05}),
]


def main() -> None:
    rows = []
    for activation, rms, (gauss, gauss_params), ortho_params in SETTINGS:
        for name, init, params in (("Gaussian", gauss, gauss_params),
                                   ("orthogonal", "orthogonal", ortho_params)):
            model = MLP(in_dim=WIDTH, width=WIDTH, depth=DEPTH, activation=activation,
                        bias=False)
            weights = initialize(model, init, 0, params)
            x = rms * vf.unit_rms_inputs(32, WIDTH, np.random.default_rng(
                np.random.SeedSequence(0, spawn_key=(1,))))
            got = iso.jacobian_spectrum(model, weights, x)
            mean, var = iso.free_probability_prediction(model, weights, rms)
            label = f"{activation} {name}" + (f" (gain {params['gain']:g})" if params else "")
            cells = []
            for depth in SHOW:
                i = depth - 1
                cells.append(f"{got.mean_sq[i]:.3g} / {got.var_sq[i]:.3g} "
                             f"({var[i]:.3g})")
            rows.append([label, f"{rms:g}", *cells])
    headers = ["network", "input RMS",
               *(f"depth {d}: m₁ / σ² (theory σ²)" for d in SHOW)]
    print(tabulate(rows, headers, tablefmt="pipe", disable_numparse=True))


if __name__ == "__main__":
    main()
