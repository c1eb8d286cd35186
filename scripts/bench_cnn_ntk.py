"""Time the empirical NTK of a CNN: ntkbench (torch and JAX) against the torch.func recipe.

    python scripts/bench_cnn_ntk.py [--n 64 256] [--channels 16 32] [--image 1 28 28]

The recipe is the one in the torch.func documentation: ``functional_call`` of an
``nn.Sequential``, ``vmap(jacrev(...))`` for per-example Jacobians and one ``einsum`` over all
parameters. Every result is checked against the float64 ntkbench kernel. Timings are medians
of ``--repeats`` runs after one warm-up (which includes JAX's compilation).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import ntkbench as nb
from ntkbench.backends import get_backend


def recipe(model: nb.CNN, weights, x: np.ndarray) -> np.ndarray:
    """The torch.func Jacobian-contraction recipe on an equivalent nn.Sequential."""
    layers: list[torch.nn.Module] = [torch.nn.Unflatten(1, model.input_shape)]
    for i, info in enumerate(model.layers()):
        w = weights[i]["W"]
        if info.kind == "conv":
            layers += [torch.nn.Conv2d(w.shape[1], w.shape[0], model.kernel_size,
                                       stride=model.stride, padding=model.pad), torch.nn.ReLU()]
            if model.pool > 1:
                layers.append(torch.nn.AvgPool2d(model.pool))
        else:
            if i == model.n_conv:
                layers.append(torch.nn.Flatten())
            layers.append(torch.nn.Linear(w.shape[1], w.shape[0]))
            if not info.is_readout:
                layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    params = {k: v.detach() for k, v in net.named_parameters()}
    for (k_w, k_b), layer in zip(zip(list(params)[::2], list(params)[1::2], strict=True),
                                 weights, strict=True):
        params[k_w] = torch.from_numpy(layer["W"]).float()
        params[k_b] = torch.from_numpy(layer["b"]).float()

    def single(p, xi):
        return torch.func.functional_call(net, p, (xi.unsqueeze(0),)).squeeze(0)

    xt = torch.from_numpy(x).float()
    jac = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))(params, xt)
    flat = torch.cat([j.flatten(2) for j in jac.values()], dim=2)
    return torch.einsum("iop,jop->ij", flat, flat).double().numpy()


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[64, 256])
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    p.add_argument("--image", type=int, nargs=3, default=[1, 28, 28], metavar=("C", "H", "W"))
    p.add_argument("--head", type=int, nargs="*", default=[64])
    p.add_argument("--out-dim", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = nb.CNN(input_shape=tuple(args.image), channels=tuple(args.channels), pool=2,
                   head=tuple(args.head), out_dim=args.out_dim)
    weights = nb.initialize(model, "he_normal", seed=0)
    print(f"CNN {args.image} → conv{args.channels} (3x3, avg-pool 2) → dense{args.head} → "
          f"{args.out_dim}; {model.n_params():,} parameters; float32, {args.threads} threads; "
          f"kernel traced over outputs; median of {args.repeats}")
    print(f"{'n':>6} {'method':<16} {'time':>10} {'rel. error':>11}")
    for n in args.n:
        x = np.random.default_rng(1).uniform(size=(n, model.in_dim))
        ref = get_backend("torch").Network(model, weights, dtype="float64").ntk(x)
        methods = {"ntkbench torch": lambda x=x: get_backend("torch").Network(
                       model, weights, dtype="float32").ntk(x),
                   "ntkbench jax": lambda x=x: get_backend("jax").Network(
                       model, weights, dtype="float32").ntk(x),
                   "torch.func recipe": lambda x=x: recipe(model, weights, x)}
        for name, fn in methods.items():
            seconds, K = timed(fn, args.repeats)
            err = np.abs(K - ref).max() / np.abs(ref).max()
            print(f"{n:>6} {name:<16} {seconds * 1e3:>8.1f} ms {err:>11.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
