"""Mixed precision (issue 20, item 3): statistics in float32 whatever the parameters' dtype, gradient
statistics of unscaled gradients under a GradScaler, steps the scaler skipped counted (not reported as
NaN gradients), and the loss scale recorded."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def _logdir(tmp_path):
    from tb_plus.store import Logdir

    return Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache")).refresh()


def test_bf16_parameters_get_float32_statistics(tmp_path):
    from tb_plus.trace import Tracer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4)).to(torch.bfloat16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    tracer = Tracer(model, opt, logdir=str(tmp_path / "logs"), every=1, histograms_every=0)
    refs = []
    for _ in range(3):
        loss = model(torch.randn(32, 256, dtype=torch.bfloat16)).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        refs.append(float(model[0].weight.grad.detach().double().norm()))
        opt.step()
    tracer.close()
    ld = _logdir(tmp_path)
    gn = ld.scalars(".", "trace/grad_norm/0.weight").value
    for k, g_ref in enumerate(refs):  # a norm summed in bf16 is off by about 1e-3
        assert gn[k] == pytest.approx(g_ref, rel=2e-6)


def test_grad_scaler_statistics_are_unscaled_and_skipped_steps_counted(tmp_path):
    from tb_plus.trace import Tracer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    tracer = Tracer(model, opt, logdir=str(tmp_path / "logs"), every=1, histograms_every=0, scaler=scaler)
    overflow = 4  # the loss is made inf at this iteration: its gradients overflow, the scaler skips the step
    reference = {}
    for it in range(8):
        x = torch.randn(16, 6)
        loss = model(x).pow(2).mean()
        grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
        reference[it] = float(grads[0].norm())  # the unscaled gradient of the first weight
        if it == overflow:
            loss = loss * math.inf
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    tracer.close()
    assert tracer.skipped == 1
    ld = _logdir(tmp_path)
    gn = ld.scalars(".", "trace/grad_norm/0.weight")
    assert overflow not in gn.step.tolist() and len(gn.step) == 7  # the skipped step has no gradient statistics
    for s, v in zip(gn.step.tolist(), gn.value.tolist()):
        assert v == pytest.approx(reference[s], rel=1e-5), s  # unscaled: the scale was 1024
    assert not np.any(ld.scalars(".", "trace/grad_nan/0.weight").value)  # never taken for NaN gradients
    skipped = ld.scalars(".", "trace/skipped_steps")
    assert skipped.step.tolist() == [overflow] and skipped.value.tolist() == [1.0]
    scale = ld.scalars(".", "trace/loss_scale")
    by_step = dict(zip(scale.step.tolist(), scale.value.tolist()))
    assert by_step[0] == 1024.0 and by_step[overflow] == 1024.0 and by_step[overflow + 1] == 512.0  # halved
    model_steps = sorted(by_step)
    assert model_steps == list(range(8))
