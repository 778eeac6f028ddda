"""/trace through TensorBoard's WSGI app, over logs written by the real tracer."""

import pytest

from tests.routes.conftest import get_json, make_app

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from werkzeug import test as wtest

    from tb_plus.trace import Tracer

    logs = tmp_path_factory.mktemp("trace_logs")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    tracer = Tracer(model, opt, logdir=str(logs / "mlp"), every=1, histograms_every=0)
    for _ in range(30):
        loss = model(torch.randn(16, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    tracer.close()
    return wtest.Client(make_app(logs, tmp_path_factory.mktemp("trace_cache"))), logs


def test_families_and_heatmap(setup):
    client, _ = setup
    fam = get_json(client, "/trace?run=mlp")["families"]
    assert fam["tag"] == ["trace/activations", "trace/params"]
    assert fam["layers"][1] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    body = get_json(client, "/trace?run=mlp&tag=trace%2Fparams&stat=grad_norm")
    assert body["layers"] == fam["layers"][1] and body["steps"] == list(range(30)) and body["total_steps"] == 30
    series = get_json(client, "/series?run=mlp&tag=trace%2Fgrad_norm%2F2.weight")
    assert body["values"][2] == series["value"]
    thin = get_json(client, "/trace?run=mlp&tag=trace%2Fparams&stat=grad_norm&width=7")
    assert len(thin["steps"]) == 7 and thin["steps"][-1] == 29
    assert thin["values"][0][-1] == body["values"][0][-1]


@pytest.mark.parametrize("query, code, shown", [
    ("/trace", 400, "'run'"),
    ("/trace?run=nope", 404, "'nope'"),
    ("/trace?run=mlp&tag=trace%2Fparams", 400, "both"),
    ("/trace?run=mlp&tag=trace%2Fparams&stat=nope", 404, "'nope'"),
    ("/trace?run=mlp&tag=nope&stat=grad_norm", 404, "'nope'"),
    ("/trace?run=mlp&tag=trace%2Fparams&stat=grad_norm&width=0", 400, "width"),
])
def test_bad_trace_queries(setup, query, code, shown):
    client, _ = setup
    r = client.get("/data/plugin/tb_plus" + query)
    assert r.status_code == code and shown in r.get_data(as_text=True)
