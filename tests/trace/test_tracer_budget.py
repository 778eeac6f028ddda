"""The tracer's cost budget (issue 20, item 1): it measures its own cost against the step time and
traces every N-th step so that its share stays within the budget. Time is a fake clock here, moved
by the test (the training step) and by a tracer made artificially expensive, so the figures do not
depend on this machine's speed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

STEP_S = 0.010  # what one training step costs on the fake clock
TRACE_S = 0.005  # what one traced step costs the tracer: half a step, 25x the 2% budget


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _train(tmp_path, steps, budget=0.02, trace_s=TRACE_S, every=None):
    from tb_plus.trace import Tracer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    clock = FakeClock()
    tracer = Tracer(model, opt, logdir=str(tmp_path / "logs"), budget=budget, every=every, histograms_every=0,
                    clock=clock)
    record = tracer._record

    def expensive(s):  # the tracer's work, made to cost trace_s on the clock
        clock.t += trace_s
        record(s)

    tracer._record = expensive
    weights, intervals = [], []
    for _ in range(steps):
        x = torch.randn(16, 6)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        clock.t += STEP_S  # the training step itself
        weights.append([p.detach().clone() for p in model.parameters()])
        opt.step()
        intervals.append(tracer.every)
    weights.append([p.detach().clone() for p in model.parameters()])
    tracer.close()
    return tracer, weights, intervals


def _logdir(tmp_path):
    from tb_plus.store import Logdir

    return Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache")).refresh()


def test_the_interval_grows_until_the_share_is_within_the_budget(tmp_path):
    tracer, _, intervals = _train(tmp_path, 400)
    want = int(np.ceil(TRACE_S / (0.02 * STEP_S)))  # 25
    assert intervals[0] == 1 and intervals[-1] == want
    assert tracer.measured_share <= 0.02 + 1e-9
    ld = _logdir(tmp_path)
    chosen = ld.scalars(".", "trace/interval")  # the sampling, written for readers
    assert chosen.value[-1] == want and chosen.value[0] >= 1
    traced = ld.scalars(".", "trace/grad_norm/0.weight").step
    gaps = np.diff(traced)
    assert set(gaps[-5:]) == {want}  # once chosen, every 25th step
    assert len(traced) <= 400 / want + 10  # few traced steps: the cost stays in the budget


def test_a_cheap_tracer_traces_every_step(tmp_path):
    tracer, _, intervals = _train(tmp_path, 50, trace_s=0.0001)  # 1% of a step: within 2%
    assert set(intervals) == {1} and tracer.measured_share <= 0.02


def test_update_statistics_are_right_at_any_interval(tmp_path):
    """The weights are copied only before traced steps, so the update norm of a traced step is that
    step's own update, whatever the interval."""
    _, weights, _ = _train(tmp_path, 120, trace_s=0.001)  # interval 5
    ld = _logdir(tmp_path)
    upd = ld.scalars(".", "trace/update_norm/0.weight")
    assert len(upd.step) >= 10
    for s, v in zip(upd.step.tolist(), upd.value.tolist()):
        direct = float((weights[s][0] - weights[s + 1][0]).norm())
        assert v == pytest.approx(direct, rel=1e-4, abs=1e-7), s


def test_a_fixed_interval_is_kept_and_no_interval_series_written(tmp_path):
    tracer, _, intervals = _train(tmp_path, 30, every=3)
    assert set(intervals) == {3}
    ld = _logdir(tmp_path)
    assert "trace/interval" not in ld.tags(".")
    assert ld.scalars(".", "trace/grad_norm/0.weight").step.tolist() == list(range(0, 30, 3))


@pytest.mark.parametrize("kw", [{"budget": 0}, {"budget": 1.5}, {"budget": None}, {"max_every": 0}])
def test_bad_budgets_are_refused(tmp_path, kw):
    from tb_plus.trace import Tracer

    with pytest.raises(ValueError, match="budget"):
        Tracer(nn.Linear(2, 2), logdir=str(tmp_path), **kw)
