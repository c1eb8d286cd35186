"""Data-dependent initializers (LSUV, GO, MetaInit), their calibration contract and the
backend probe they run through."""

import json

import numpy as np
import pytest

import ntkbench as nb
from ntkbench.config import InitializerConfig
from ntkbench.execute import run_trial
from ntkbench.initializers import make_batch
from ntkbench.initializers.calibration import backend_probe, calibration_rng
from ntkbench.initializers.data_dependent import collinearity, gradient_quotient
from tests.conftest import tiny_trial


def _data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, np.sin(x[:, :1]) + 0.1 * x[:, 1:2]


def _mse(out, y):
    return 0.5 * np.sum((out - y) ** 2) / len(out)


def _cross_entropy(out, labels):
    shifted = out - out.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


def _flat(weights):
    return np.concatenate([np.r_[w["W"].ravel(), w["b"].ravel()] for w in weights])


def _unflat(vec, like):
    out, i = [], 0
    for w in like:
        nW, nb_ = w["W"].size, w["b"].size
        out.append({"W": vec[i:i + nW].reshape(w["W"].shape), "b": vec[i + nW:i + nW + nb_]})
        i += nW + nb_
    return out


MODELS = {
    "mlp": (nb.MLP(in_dim=6, width=5, depth=2, out_dim=3, activation="tanh"), 6),
    "cnn": (nb.CNN(input_shape=(1, 4, 4), channels=(2,), head=(3,), out_dim=3,
                   activation="tanh", pool=1), 16),
}


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_probe_gradients_and_hvp_match_finite_differences(backend, kind, loss):
    model, in_dim = MODELS[kind]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, in_dim))
    weights = nb.initialize(model, "xavier_normal", seed=2)
    for w in weights:  # non-zero biases, so their derivatives are exercised
        w["b"] = rng.normal(scale=0.3, size=w["b"].shape)
    if loss == "mse":
        labels = rng.normal(size=(7, 3))
        value = _mse
    else:
        labels = rng.integers(0, 3, size=7)
        value = _cross_entropy
    probe = backend_probe(model, backend, loss=loss)
    theta = _flat(weights)

    def loss_at(t):
        return value(probe.outputs(_unflat(t, weights), x), labels)

    g = _flat(probe.loss_gradients(weights, x, labels))
    h = 1e-6
    fd = np.array([(loss_at(theta + h * e) - loss_at(theta - h * e)) / (2 * h)
                   for e in np.eye(len(theta))])
    np.testing.assert_allclose(g, fd, atol=1e-8)  # central differences: O(h²) + O(ε/h)

    v = rng.normal(size=theta.shape)
    hv = _flat(probe.loss_hvp(weights, x, labels, _unflat(v, weights)))

    def grad_at(t):
        return _flat(probe.loss_gradients(_unflat(t, weights), x, labels))

    h = 1e-5
    fd_hv = (grad_at(theta + h * v) - grad_at(theta - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd_hv, atol=1e-7)


def test_probe_layer_outputs_follow_the_forward_pass(backend):
    model = nb.MLP(in_dim=3, width=8, depth=2, out_dim=2, activation="tanh")
    weights = nb.initialize(model, "he_normal", seed=0)
    x = np.random.default_rng(0).normal(size=(5, 3))
    trace = backend_probe(model, backend).layer_outputs(weights, x)
    h = x
    assert len(trace) == 3
    for i, (w, (z, a)) in enumerate(zip(weights, trace, strict=True)):
        np.testing.assert_allclose(z, h @ w["W"].T + w["b"], rtol=1e-12, atol=1e-12)
        h = np.tanh(z) if i < 2 else z
        np.testing.assert_allclose(a, h, rtol=1e-12, atol=1e-12)


def _numpy_forward(weights, x, act=np.tanh):
    """Pre-activations of every layer of a standard-parameterization MLP."""
    zs, h = [], x
    for i, w in enumerate(weights):
        z = h @ w["W"].T + w["b"]
        zs.append(z)
        h = act(z) if i < len(weights) - 1 else z
    return zs


def test_lsuv_gives_unit_output_variance_in_every_layer(backend):
    x, y = _data(n=200, d=4)
    model = nb.MLP(in_dim=4, width=32, depth=4, activation="tanh")
    weights = nb.initialize(model, "lsuv", seed=0, data=(x, y), backend=backend,
                            params={"tol": 0.01})
    pre = nb.initialize(model, "lsuv", seed=0, calibrate=False)  # the orthonormal pre-init
    chosen = weights.calibration
    assert chosen["batch_size"] == 200
    for i, z in enumerate(_numpy_forward(weights, x)):
        assert abs(np.var(z) - 1) < 0.01, (i, np.var(z))  # independent of the probe
        # Only the scale changed: W = scale · W_pre with the recorded factor.
        np.testing.assert_allclose(weights[i]["W"], chosen["scales"][i] * pre[i]["W"],
                                   rtol=1e-12)
        assert chosen["layer_converged"][i] and abs(chosen["output_variance"][i] - 1) < 0.01
    q = pre[1]["W"]  # 32 × 32: orthogonal
    np.testing.assert_allclose(q @ q.T, np.eye(32), atol=1e-12)


def test_one_lsuv_pass_is_exact_without_biases():
    # z_l is linear in W_l and the pre-init biases are 0, so one rescale hits variance 1.
    x, y = _data(n=100, d=4)
    model = nb.MLP(in_dim=4, width=16, depth=2, activation="tanh")
    weights = nb.initialize(model, "lsuv", seed=0, data=(x, y),
                            params={"tol": 1e-9, "max_iter": 1})
    assert weights.calibration["passes"] == [1, 1, 1]
    assert all(weights.calibration["layer_converged"])
    np.testing.assert_allclose(weights.calibration["output_variance"], 1.0, rtol=1e-12)


def test_lsuv_rejects_a_layer_with_zero_output():
    model = nb.MLP(in_dim=2, width=4, depth=1)
    with pytest.raises(ValueError, match="LSUV cannot rescale layer 0"):
        nb.initialize(model, "lsuv", seed=0, data=np.zeros((10, 2)))


def test_collinearity_measures_the_angles():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    cos2 = np.array([0.0, 0.5, 0.5])  # pairs (0,1), (0,2), (1,2)
    value, mean = collinearity(f)
    assert value == pytest.approx(-np.mean(np.log(1 - cos2)), rel=1e-12)
    assert mean == pytest.approx(cos2.mean(), rel=1e-12)
    value, mean = collinearity(f, np.array([False, True, True]))
    assert value == pytest.approx(-np.log(0.5), rel=1e-12) and mean == pytest.approx(0.5)


def test_collinearity_resolves_nearly_collapsed_features():
    # Angles of 1e-9 rad: cos² rounds to 1 in float64, sin² = 1e-18 must still be seen.
    theta = np.array([0.0, 1e-9, 3e-9])
    f = 5.0 * np.c_[np.cos(theta), np.sin(theta)]
    sin2 = np.sin(np.array([1e-9, 3e-9, 2e-9])) ** 2  # pairs (0,1), (0,2), (1,2)
    value, _ = collinearity(f)
    assert value == pytest.approx(-np.mean(np.log(sin2)), rel=1e-6)
    dead = collinearity(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))[0]
    assert dead == pytest.approx(-2 * np.log(np.finfo(float).tiny) / 3)  # zero rows: collinear


def test_go_decorrelates_collapsed_deep_tanh_features_at_a_local_minimum(backend):
    x, y = _data(n=40, d=2, seed=3)
    # Deep tanh with weight scale 0.5 is in the ordered phase: the features of all inputs
    # collapse onto one direction with depth.
    model = nb.MLP(in_dim=2, width=16, depth=6, activation="tanh")
    params = {"c0": 0.5, "b0": 0.5, "lam": 0.01, "max_iter": 100}
    weights = nb.initialize(model, "go", seed=0, data=(x, y), backend=backend, params=params)
    chosen = weights.calibration
    assert chosen["mean_cos2_initial"] > 0.9
    assert chosen["mean_cos2"] < 0.5 * chosen["mean_cos2_initial"]
    assert chosen["objective"] < chosen["objective_initial"]
    pre = nb.initialize(model, "go", seed=0, params=params, calibrate=False)
    hidden = 6
    for i in range(hidden):
        np.testing.assert_allclose(weights[i]["W"], pre[i]["W"] * chosen["c"][i] / 0.5,
                                   rtol=1e-12)
        np.testing.assert_allclose(weights[i]["b"], pre[i]["b"] * chosen["b"][i] / 0.5,
                                   rtol=1e-12)
    np.testing.assert_array_equal(weights[hidden]["W"], pre[hidden]["W"])

    # No single coordinate move of 5% in log-scale lowers the objective (within bounds).
    def objective(c, b):
        w = [{"W": pre[i]["W"] * c[i] / 0.5, "b": pre[i]["b"] * b[i] / 0.5}
             for i in range(hidden)] + [pre[hidden]]
        feats = _numpy_forward(w, x)[hidden - 1]
        return collinearity(np.tanh(feats))[0] + 0.01 * np.sum(np.square(c))

    c, b = np.array(chosen["c"]), np.array(chosen["b"])
    best = objective(c, b)
    assert best == pytest.approx(chosen["objective"], rel=1e-9)
    for i in range(2 * hidden):
        for step in (np.exp(0.05), np.exp(-0.05)):
            cc, bb = c.copy(), b.copy()
            (cc if i < hidden else bb)[i % hidden] *= step
            if 0.05 <= cc.min() and cc.max() <= 20 and 1e-4 <= bb.min() and bb.max() <= 10:
                assert objective(cc, bb) > best - 1e-4 * abs(best)


def test_gradient_quotient_of_a_linear_model_matches_the_closed_form(backend):
    rng = np.random.default_rng(4)
    model = nb.MLP(in_dim=3, depth=0, out_dim=2)
    weights = [{"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}]
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    # L = 1/(2n)‖X Wᵀ + 1 bᵀ − Y‖²: g_W = Rᵀ X / n, g_b = Rᵀ 1 / n with R = XWᵀ + 1bᵀ − Y,
    # and H (v_W, v_b) = (Dᵀ X / n, Dᵀ 1 / n) with D = X v_Wᵀ + 1 v_bᵀ.
    n = len(x)
    r = x @ weights[0]["W"].T + weights[0]["b"] - y
    g_w, g_b = r.T @ x / n, r.sum(0) / n
    d = x @ g_w.T + g_b
    h_w, h_b = d.T @ x / n, d.sum(0) / n
    eps = 1e-5
    g, hg = np.r_[g_w.ravel(), g_b], np.r_[h_w.ravel(), h_b]
    expected = np.mean(np.abs((g - hg) / (g + eps * np.where(g >= 0, 1, -1)) - 1))
    probe = backend_probe(model, backend)
    assert gradient_quotient(probe, weights, x, y, eps) == pytest.approx(expected, rel=1e-10)


def test_metainit_lowers_the_gradient_quotient_and_only_rescales_weights(backend):
    x, y = _data(n=64, d=3, seed=5)
    model = nb.MLP(in_dim=3, width=16, depth=3, activation="tanh")
    params = {"steps": 30, "batch_size": 32}
    weights = nb.initialize(model, "metainit", seed=0, data=(x, y), backend=backend,
                            params=params)
    chosen = weights.calibration
    gq = chosen["gradient_quotient"]
    assert len(gq) == 4  # steps 0, 10, 20 and the end
    assert chosen["gradient_quotient_best"] < 0.5 * gq[0] and chosen["best_step"] > 0
    # The returned weights are the best step's: their GQ on the same batch is the best one.
    mb = make_batch(model, (x, y)).sample(32, calibration_rng(0))
    returned = gradient_quotient(backend_probe(model, backend), weights, mb.x, mb.labels, 1e-5)
    assert returned == pytest.approx(chosen["gradient_quotient_best"], rel=1e-9)
    pre = nb.initialize(model, "metainit", seed=0, params=params, calibrate=False)
    for w, p, norm0, norm in zip(weights, pre, chosen["norms_initial"], chosen["norms"],
                                 strict=True):
        assert np.linalg.norm(p["W"]) == pytest.approx(norm0, rel=1e-12)
        np.testing.assert_allclose(w["W"], p["W"] * norm / norm0, rtol=1e-10)
        np.testing.assert_array_equal(w["b"], p["b"])


def test_calibration_is_reproducible_and_agrees_across_backends():
    pytest.importorskip("jax")
    x, y = _data(n=80, d=3)
    model = nb.MLP(in_dim=3, width=16, depth=3, activation="tanh")
    # GO's finite-difference L-BFGS amplifies the backends' round-off along flat directions:
    # the objective agrees to round-off, the scales only to 1e-3.
    params = {"lsuv": ({}, 1e-10), "go": ({"max_iter": 100}, 1e-3),
              "metainit": ({"steps": 5}, 1e-10)}
    for name, (p, rtol) in params.items():
        a = nb.initialize(model, name, seed=7, data=(x, y), params=p)
        b = nb.initialize(model, name, seed=7, data=(x, y), params=p)
        c = nb.initialize(model, name, seed=7, data=(x, y), params=p, backend="jax")
        for wa, wb, wc in zip(a, b, c, strict=True):
            np.testing.assert_array_equal(wa["W"], wb["W"])
            np.testing.assert_allclose(wa["W"], wc["W"], rtol=rtol, atol=1e-12)
        if name == "go":
            assert a.calibration["objective"] == pytest.approx(c.calibration["objective"],
                                                               rel=1e-8)
        other = nb.initialize(model, name, seed=8, data=(x, y), params=p)
        assert not np.allclose(a[0]["W"], other[0]["W"])


def test_a_data_dependent_initializer_needs_data():
    model = nb.MLP(in_dim=2, width=4, depth=1)
    with pytest.raises(ValueError, match="'lsuv' is data-dependent"):
        nb.initialize(model, "lsuv", seed=0)
    assert nb.initialize(model, "he_normal", seed=0, data=np.ones((3, 2))).calibration is None


def test_a_calibrate_step_that_breaks_the_contract_is_reported():
    model = nb.MLP(in_dim=2, width=4, depth=1)

    def init(shape, rng, *, layer):
        return rng.normal(size=shape)

    init.calibrate = lambda model, weights, batch, probe, *, rng: weights
    with pytest.raises(TypeError, match=r"must return \(weights, chosen: dict\)"):
        nb.initialize(model, init, data=np.ones((3, 2)))
    init.calibrate = lambda model, weights, batch, probe, *, rng: (weights[:1], {})
    with pytest.raises(ValueError, match="returned 1 layers, expected 2"):
        nb.initialize(model, init, data=np.ones((3, 2)))
    init.calibrate = lambda model, weights, batch, probe, *, rng: (
        [{"W": w["W"] * np.nan, "b": w["b"]} for w in weights], {})
    with pytest.raises(ValueError, match="non-finite W for layer 0"):
        nb.initialize(model, init, data=np.ones((3, 2)))


@pytest.mark.parametrize("name, params, message", [
    ("lsuv", {"tol": 0}, "tol must be > 0"),
    ("lsuv", {"max_iter": 0}, "max_iter must be an integer >= 1"),
    ("go", {"b0": 0}, "b0 must be > 0"),
    ("go", {"lam": -1}, "lam must be >= 0"),
    ("metainit", {"momentum": 1.0}, "momentum must be < 1"),
    ("metainit", {"lr": 0}, "lr must be > 0"),
])
def test_invalid_parameters_are_rejected_before_any_calibration(name, params, message):
    with pytest.raises(ValueError, match=message):
        nb.initialize(nb.MLP(in_dim=2, width=4, depth=1), name, params=params)


def test_make_batch_reads_labels_and_targets():
    model = nb.MLP(in_dim=2, width=4, depth=1, out_dim=3)
    b = make_batch(model, (np.ones((4, 2)), np.array([0, 2, 1, 2])))
    assert b.kind == "classification" and b.y.shape == (4, 3) and b.y[1, 2] == 1
    b = make_batch(model, np.ones((4, 2)))
    assert b.kind == "regression" and b.y.shape == (4, 3) and not b.y.any()


@pytest.mark.parametrize("name", ["lsuv", "go", "metainit"])
def test_a_trial_records_what_the_initializer_chose(backend, name):
    params = {"go": {"max_iter": 5}, "metainit": {"steps": 3}}.get(name, {})
    trial = tiny_trial(backend=backend).model_copy(
        update={"initializer": InitializerConfig(name=name, params=params)})
    record = run_trial(trial)
    assert record["status"] == "ok", record.get("error")
    chosen = record["initializer_calibration"]
    json.dumps(chosen)  # stored as-is in the results table
    assert chosen["probe_evaluations"] > 0 and chosen["calibration_time_s"] > 0
    assert {"lsuv": "scales", "go": "c", "metainit": "norms"}[name] in chosen


def test_go_escapes_a_total_collapse_in_a_deep_tanh_network():
    x, y = _data(n=30, d=2, seed=6)
    model = nb.MLP(in_dim=2, width=16, depth=14, activation="tanh")
    weights = nb.initialize(model, "go", seed=0, data=(x, y),
                            params={"c0": 0.5, "b0": 0.5, "max_iter": 40})
    chosen = weights.calibration
    assert chosen["mean_cos2_initial"] > 1 - 1e-6  # every input maps to the same direction
    assert chosen["mean_cos2"] < 0.5


def test_go_means_the_same_network_under_ntk_parameterization():
    x, y = _data(n=40, d=2, seed=2)
    runs = {}
    for par in ("standard", "ntk"):
        model = nb.MLP(in_dim=2, width=64, depth=4, activation="tanh", parameterization=par)
        runs[par] = nb.initialize(model, "go", seed=0, data=(x, y),
                                  params={"max_iter": 20}).calibration
    # The same effective weights at the start, so the same features and objective.
    assert runs["ntk"]["objective_initial"] == pytest.approx(
        runs["standard"]["objective_initial"], rel=1e-9)
    for run in runs.values():
        assert run["mean_cos2"] < 0.8 * run["mean_cos2_initial"]


def test_go_without_biases_fits_only_the_weight_scales():
    x, y = _data(n=40, d=2, seed=2)
    model = nb.MLP(in_dim=2, width=16, depth=3, activation="tanh", bias=False)
    chosen = nb.initialize(model, "go", seed=0, data=(x, y), params={"max_iter": 10}).calibration
    assert len(chosen["c"]) == 3 and chosen["b"] == []


def test_metainit_starts_from_lecun_in_effective_weights_under_ntk():
    x, y = _data(n=32, d=3)
    params = {"steps": 3}
    std = nb.MLP(in_dim=3, width=16, depth=2, activation="tanh")
    ntk = nb.MLP(in_dim=3, width=16, depth=2, activation="tanh", parameterization="ntk")
    a = nb.initialize(std, "metainit", seed=0, data=(x, y), params=params).calibration
    b = nb.initialize(ntk, "metainit", seed=0, data=(x, y), params=params).calibration
    for layer, norm_std, norm_ntk in zip(ntk.layers(), a["norms_initial"], b["norms_initial"],
                                         strict=True):
        s_w = ntk.scales(layer)[0]
        assert norm_ntk * s_w == pytest.approx(norm_std, rel=1e-12)


@pytest.mark.parametrize("name, params", [("lsuv", {}), ("go", {"max_iter": 5}),
                                          ("metainit", {"steps": 3, "batch_size": 8})])
def test_data_dependent_initializers_calibrate_a_cnn(backend, name, params):
    model = nb.CNN(input_shape=(1, 6, 6), channels=(4, 4), head=(8,), out_dim=3,
                   activation="tanh", pool=1)
    rng = np.random.default_rng(0)
    x, labels = rng.uniform(size=(24, 36)), rng.integers(0, 3, size=24)
    weights = nb.initialize(model, name, seed=0, data=(x, labels), backend=backend,
                            params=params)
    pre = nb.initialize(model, name, seed=0, params=params, calibrate=False)
    assert [w["W"].shape for w in weights] == [p["W"].shape for p in pre]
    assert not np.allclose(weights[0]["W"], pre[0]["W"])  # calibration changed something
    if name == "lsuv":
        trace = backend_probe(model, backend).layer_outputs(weights, x)
        for z, _ in trace:
            assert abs(np.var(z) - 1) < 0.1


@pytest.mark.parametrize("data, message", [
    ((np.ones((4, 3)), None), r"examples of 2 inputs each \(shape \(n, 2\)\)"),
    ((np.ones((4, 2)), np.zeros(5)), "y has 5 rows but x has 4"),
    ((np.ones((4, 2)), np.array([0, 1, 3, 1])), "outside 0..2"),
    ((np.ones((4, 2)), np.zeros((4, 2))), "2 targets per example, the model 3 outputs"),
])
def test_make_batch_rejects_data_that_does_not_fit_the_model(data, message):
    model = nb.MLP(in_dim=2, width=4, depth=1, out_dim=3)
    with pytest.raises(ValueError, match=message):
        make_batch(model, data if data[1] is not None else data[0])


def test_calibration_survives_the_results_table(tmp_path):
    from ntkbench.runner import run_trials
    from ntkbench.store import load_results

    trials = [tiny_trial().model_copy(update={"initializer": InitializerConfig(name=name)})
              for name in ("lsuv", "he_normal")]
    run_trials(trials, tmp_path, jobs=1, progress=False)
    table = load_results(tmp_path).set_index("initializer")
    scales = table.loc["lsuv", "initializer_calibration.scales"]
    assert len(scales) == 2 and all(s > 0 for s in scales)
    assert list(table.loc["lsuv", "initializer_calibration.passes"]) == [1, 1]
    assert table.loc["lsuv", "initializer_calibration.batch_size"] == 20
    missing = table.loc["he_normal", "initializer_calibration.batch_size"]
    assert missing is None or np.isnan(missing)


def test_a_classification_trial_calibrates_on_integer_labels(backend):
    from ntkbench.config import DataConfig, TrainingConfig

    trial = tiny_trial(backend=backend).model_copy(update={
        "initializer": InitializerConfig(name="metainit", params={"steps": 2}),
        "data": DataConfig(generator="digits", params={"n_train": 60, "n_test": 40}),
        "training": TrainingConfig(lr=0.1, steps=5, loss="cross_entropy"),
        "metric": "test_accuracy"})
    record = run_trial(trial)
    assert record["status"] == "ok", record.get("error")
    assert len(record["initializer_calibration"]["norms"]) == 2
