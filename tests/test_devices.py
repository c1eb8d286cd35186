"""Device selection on the torch backend; the CUDA tests run only where a GPU is present."""

import numpy as np
import pytest
import torch
from conftest import tiny_trial

import ntkbench as nb
from ntkbench.backends import get_backend, torch_backend
from ntkbench.execute import run_trial


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_auto_is_cpu_and_cuda_is_a_clear_error_without_a_gpu():
    assert torch_backend.resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
        torch_backend.resolve_device("cuda")
    rec = run_trial(tiny_trial(device="cuda"))
    # the machine's limitation, not the trial's outcome: the next run tries it again
    assert rec["status"] == "unavailable" and "no CUDA GPU" in rec["error"]


def test_record_names_the_device():
    rec = run_trial(tiny_trial(device="auto"))
    assert rec["device"] == "auto" and rec["device_resolved"] in ("cpu", "cuda")
    assert rec["device_name"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_cuda_ntk_matches_cpu(dtype, rtol):
    rng = np.random.default_rng(0)
    model = nb.MLP(in_dim=5, width=128, depth=3, out_dim=2, activation="gelu")
    weights = nb.initialize(model, "he_normal", seed=1)
    x = rng.normal(size=(64, 5))
    for kwargs in ({}, {"full": True, "chunk_size": 7}, {"per_layer": True, "chunk_size": 20}):
        cpu = nb.empirical_ntk(model, weights, x, dtype=dtype, device="cpu", **kwargs)
        gpu = nb.empirical_ntk(model, weights, x, dtype=dtype, device="cuda", **kwargs)
        np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=rtol * np.abs(cpu).max())
    cross_cpu = nb.empirical_ntk(model, weights, x[:10], x, dtype=dtype, device="cpu")
    cross_gpu = nb.empirical_ntk(model, weights, x[:10], x, dtype=dtype, device="cuda",
                                 chunk_size=3)
    np.testing.assert_allclose(cross_gpu, cross_cpu, rtol=rtol,
                               atol=rtol * np.abs(cross_cpu).max())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_trial_records_gpu_name_and_memory():
    rec = run_trial(tiny_trial(device="cuda"))
    assert rec["status"] == "ok", rec.get("error")
    assert rec["device_resolved"] == "cuda"
    assert rec["device_name"] == torch.cuda.get_device_name(0)
    assert rec["peak_memory_mb"] > 0
    cpu = run_trial(tiny_trial(device="cpu"))
    # The NTK probes ran on the GPU too and see the same network as on the CPU.
    assert rec["ntk_init"]["analytic_distance"] == pytest.approx(
        cpu["ntk_init"]["analytic_distance"], rel=1e-3)
    assert rec["linearized"]["gap_train"] == pytest.approx(cpu["linearized"]["gap_train"],
                                                           rel=0.05, abs=1e-4)


def _jax_gpu() -> bool:
    try:
        import jax
    except ImportError:
        return False
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(_jax_gpu(), reason="checks the CPU-only behaviour")
def test_jax_auto_is_cpu_and_cuda_is_a_clear_error_without_a_gpu():
    jax_backend = get_backend("jax")
    assert jax_backend.resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="JAX sees no GPU"):
        jax_backend.resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not _jax_gpu(), reason="JAX sees no GPU")
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_jax_cuda_ntk_and_trial_match_cpu(dtype, rtol):
    rng = np.random.default_rng(0)
    model = nb.MLP(in_dim=5, width=128, depth=3, out_dim=2, activation="gelu")
    weights = nb.initialize(model, "he_normal", seed=1)
    x = rng.normal(size=(64, 5))
    for kwargs in ({}, {"full": True, "chunk_size": 7}, {"per_layer": True}):
        cpu = nb.empirical_ntk(model, weights, x, dtype=dtype, backend="jax", **kwargs)
        gpu = nb.empirical_ntk(model, weights, x, dtype=dtype, backend="jax", device="cuda",
                               **kwargs)
        np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=rtol * np.abs(cpu).max())
    rec = run_trial(tiny_trial(backend="jax", device="cuda"))
    assert rec["status"] == "ok", rec.get("error")
    assert rec["device_resolved"] == "cuda" and rec["device_name"]


def _gpu(backend: str) -> bool:
    return torch.cuda.is_available() if backend == "torch" else _jax_gpu()


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_cuda_cnn_matches_cpu_and_repeats_exactly(backend, dtype, rtol):
    """A CNN's NTK and training on the GPU equal the CPU's, and two GPU runs are identical
    (deterministic convolution algorithms; see README, Determinism)."""
    if not _gpu(backend):
        pytest.skip(f"{backend} sees no GPU")
    from ntkbench.config import TrainingConfig

    model = nb.CNN(input_shape=(2, 10, 10), channels=(16, 32), pool=2, head=(64,), out_dim=3)
    weights = nb.initialize(model, "orthogonal", seed=2)
    x = np.random.default_rng(3).normal(size=(48, model.in_dim))
    y = np.random.default_rng(4).normal(size=(48, 3))
    for kwargs in ({}, {"full": True, "chunk_size": 20}):
        cpu = nb.empirical_ntk(model, weights, x, dtype=dtype, backend=backend, **kwargs)
        gpu = nb.empirical_ntk(model, weights, x, dtype=dtype, backend=backend, device="cuda",
                               **kwargs)
        np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=rtol * np.abs(cpu).max())
    training = TrainingConfig(lr=0.05, steps=50, dtype=dtype)
    runs = {}
    for device in ("cpu", "cuda", "cuda"):
        net = get_backend(backend).Network(model, weights, dtype=dtype, device=device)
        log = net.train(x, y, training, seed=0, checkpoints=[], on_checkpoint=lambda *a: None)
        runs.setdefault(device, []).append((np.array(log.losses), net.predict(x)))
    (gpu_a, out_a), (gpu_b, out_b) = runs["cuda"]
    np.testing.assert_array_equal(gpu_a, gpu_b)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_allclose(gpu_a, runs["cpu"][0][0], rtol=10 * rtol)
