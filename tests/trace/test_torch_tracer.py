"""The PyTorch tracer: each statistic against a direct reference computation, packing and expansion
through the store, NaN/Inf counts, activations (zeros, saturation, dead units), histograms."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from tb_plus import metadata  # noqa: E402
from tb_plus.store import Logdir  # noqa: E402


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2), nn.Sigmoid())


def train(tracer_kw, steps=5, tmp_path=None, model=None, lr=0.1, poison=None):
    from tb_plus.trace import Tracer

    model = model or small_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    tracer = Tracer(model, opt, logdir=str(tmp_path / "logs"), **{"every": 1, **tracer_kw})
    torch.manual_seed(1)
    refs = []
    for step in range(steps):
        x = torch.randn(32, 6)
        y = torch.randn(32, 2)
        out = model(x)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if poison is not None and step == poison:
            model[0].weight.grad[0, 0] = float("nan")
            model[0].weight.grad[0, 1] = float("inf")
        before = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad.detach().clone() for p in model.parameters()]
        opt.step()
        refs.append((before, grads, [p.detach().clone() for p in model.parameters()], x))
    tracer.close()
    assert tracer.errors == []
    return model, refs, Logdir(tmp_path / "logs", tmp_path / "cache")


def test_parameter_statistics_equal_direct_computations(tmp_path):
    model, refs, ld = train({"histograms_every": 0}, tmp_path=tmp_path)
    names = [n for n, _ in model.named_parameters()]
    vn = torch.linalg.vector_norm
    for k, (before, grads, after, _) in enumerate(refs):
        for name, b, g, a in zip(names, before, grads, after):
            expect = {
                "weight_norm": vn(a), "grad_norm": vn(g), "update_norm": vn(a - b),
                "update_ratio": vn(a - b) / vn(a), "update_ratio_mean": (a - b).abs().mean() / a.abs().mean(),
                "weight_max": a.abs().max(), "grad_max": g.abs().max(),
                "grad_nan": 0.0, "grad_inf": 0.0, "weight_nan": 0.0, "weight_inf": 0.0,
            }
            for stat, want in expect.items():
                got = ld.scalars(".", f"trace/{stat}/{name}")
                assert got.step[k] == k
                assert got.value[k] == pytest.approx(float(want), rel=1e-5, abs=1e-7), (stat, name, k)


def test_packing_round_trips_exactly_and_tags_are_listed(tmp_path):
    model, _, ld = train({"histograms_every": 0}, steps=3, tmp_path=tmp_path)
    info = ld.tag_info(".", "trace/params")
    assert info.plugin_name == metadata.TRACE_PLUGIN
    content = metadata.parse_content(info.plugin_content)
    assert content["layers"] == [n for n, _ in model.named_parameters()] and content["stats"] == list(metadata.PARAM_STATS)
    raw = ld.tensors(".", "trace/params")
    assert [d.step for d in raw] == [0, 1, 2] and raw[0].numpy.shape == (6, len(metadata.PARAM_STATS))
    for j, stat in enumerate(metadata.PARAM_STATS):
        for i, layer in enumerate(content["layers"]):
            series = ld.scalars(".", f"trace/{stat}/{layer}")
            assert np.array_equal(series.value, np.array([d.numpy[i, j] for d in raw], dtype=np.float64))
    tags = set(ld.tags("."))
    assert "trace/grad_norm/0.weight" in tags and "trace/mean/1" in tags and "trace/dead_fraction/1" in tags


def test_nan_and_inf_counts(tmp_path):
    _, _, ld = train({"histograms_every": 0}, steps=3, tmp_path=tmp_path, poison=1)
    # step 1: one NaN and one Inf gradient entry; the update spreads them into the weights, and at
    # step 2 every gradient entry of that layer is NaN
    assert ld.scalars(".", "trace/grad_nan/0.weight").value.tolist() == [0, 1, 48]
    assert ld.scalars(".", "trace/grad_inf/0.weight").value.tolist() == [0, 1, 0]
    assert ld.scalars(".", "trace/weight_nan/0.weight").value.tolist() == [0, 1, 48]
    assert ld.scalars(".", "trace/weight_inf/0.weight").value.tolist() == [0, 1, 0]
    assert math.isnan(ld.scalars(".", "trace/grad_norm/0.weight").value[1])
    assert ld.scalars(".", "trace/grad_nan/4.weight").value.tolist()[:2] == [0, 0]


def test_activation_statistics(tmp_path):
    model, refs, ld = train({"histograms_every": 0, "dead_window": 2, "act_examples": 32}, steps=4, tmp_path=tmp_path)
    x = refs[0][3]
    with torch.no_grad():  # the forward pass of step 0, with the weights before its update
        m = small_model()
        h1 = m[0](x)
        r = torch.relu(h1)
        h2 = m[2](r)
        t = torch.tanh(h2)
        h3 = m[4](t)
    assert ld.scalars(".", "trace/mean/1").value[0] == pytest.approx(float(r.mean()), rel=1e-5)
    assert ld.scalars(".", "trace/std/1").value[0] == pytest.approx(float(r.std(unbiased=False)), rel=1e-5)
    assert ld.scalars(".", "trace/zero_fraction/1").value[0] == pytest.approx(float((r == 0).float().mean()))
    assert ld.scalars(".", "trace/saturated_fraction/3").value[0] == pytest.approx(float((h2.abs() > 2.5).float().mean()))
    assert ld.scalars(".", "trace/saturated_fraction/5").value[0] == pytest.approx(float((h3.abs() > 4.6).float().mean()))
    dead = ld.scalars(".", "trace/dead_fraction/1").value
    assert np.isnan(dead[:2]).all() and 0 <= dead[2] <= 1  # known once the first window of 2 steps closed


def test_dead_relu_units_are_found(tmp_path):
    model = small_model()
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # three units can never be positive
    _, _, ld = train({"histograms_every": 0, "dead_window": 2}, steps=4, tmp_path=tmp_path, model=model, lr=1e-4)
    assert ld.scalars(".", "trace/dead_fraction/1").value[2] == pytest.approx(3 / 8)


def test_histograms_and_every(tmp_path):
    _, refs, ld = train({"histograms_every": 2, "every": 2}, steps=5, tmp_path=tmp_path)
    assert ld.scalars(".", "trace/grad_norm/0.weight").step.tolist() == [0, 2, 4]
    hist = ld.histograms(".", "trace/hist/weights/0.weight")
    assert [h.step for h in hist] == [0, 2, 4]
    w = refs[2][2][0].reshape(-1).numpy()  # the weights after step 2
    h = hist[1].numpy
    assert h[:, 2].sum() == w.size and h[0, 0] == pytest.approx(w.min(), rel=1e-6)
    assert h[-1, 1] == pytest.approx(w.max(), rel=1e-6)
    assert "trace/hist/activations/1" in ld.tags(".", "histograms")


def test_the_tracer_never_writes_into_the_training_loop(tmp_path):
    """A writer error is kept, not raised; close() still returns."""
    from tb_plus.trace import Tracer

    model = small_model()
    tracer = Tracer(model, logdir=str(tmp_path / "logs"), every=1, histograms_every=0)
    tracer._writer._file.write = lambda ev: (_ for _ in ()).throw(OSError("disk full"))
    model(torch.randn(4, 6)).sum().backward()
    tracer.step()
    tracer.close()
    assert tracer.errors and "disk full" in tracer.errors[0]


def test_activation_statistics_use_the_first_examples(tmp_path):
    _, refs, ld = train({"histograms_every": 0, "act_examples": 5}, steps=1, tmp_path=tmp_path)
    with torch.no_grad():
        r = torch.relu(small_model()[0](refs[0][3][:5]))
    assert ld.scalars(".", "trace/mean/1").value[0] == pytest.approx(float(r.mean()), rel=1e-5)


def test_batched_nonfinite_counts_equal_per_tensor_counts():
    """The accelerator path (a fixed handful of kernels, no sync) counts exactly what the per-tensor path does."""
    from tb_plus.trace.torch import _nonfinite_counts

    torch.manual_seed(3)
    tensors = [torch.randn(5, 7), torch.randn(1), torch.randn(0), torch.randn(300), torch.randn(2, 3, 4)]
    tensors[0][1, 2] = float("nan")
    tensors[0][4, 6] = float("inf")
    tensors[3][::7] = float("-inf")
    tensors[3][::11] = float("nan")
    tensors[4][1] = float("nan")
    norms = torch.stack([t.norm() if t.numel() else torch.tensor(0.0) for t in tensors])
    nan_a, inf_a = _nonfinite_counts(tensors, norms, batched=False)
    nan_b, inf_b = _nonfinite_counts(tensors, norms, batched=True)
    assert nan_a.tolist() == nan_b.tolist() == [1, 0, 0, float(torch.isnan(tensors[3]).sum()), 12]
    assert inf_a.tolist() == inf_b.tolist() == [1, 0, 0, float(torch.isinf(tensors[3]).sum()), 0]


def test_histograms_leave_non_finite_values_out(tmp_path):
    """NaN/Inf are counted by grad_nan/grad_inf; the histogram (no boolean indexing, a sync on GPUs)
    holds the finite values only, over their range."""
    _, refs, ld = train({"histograms_every": 1}, steps=3, tmp_path=tmp_path, poison=1)
    g = refs[1][1][0].reshape(-1).numpy()  # step 1's first gradient, with a NaN and an Inf
    finite = g[np.isfinite(g)]
    h = ld.histograms(".", "trace/hist/grads/0.weight")[1].numpy
    assert h[:, 2].sum() == finite.size == g.size - 2
    assert h[0, 0] == pytest.approx(finite.min(), rel=1e-6) and h[-1, 1] == pytest.approx(finite.max(), rel=1e-6)
