"""Logdir.packed_tensors: the bulk reader of fixed-shape float32 tensors (the tracer's packed
statistics) returns exactly what the protobuf reader (Logdir.tensors) returns, whichever way the
records were written."""

import numpy as np
import pytest

from tb_plus.store import Logdir


def _event(tag, step, values, metadata=False, extra_value=None, float_val=False):
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.util import tensor_util

    arr = np.asarray(values, np.float32)
    if float_val:  # the same tensor as a repeated float field, as some writers store it
        t = tensor_pb2.TensorProto(dtype=1, float_val=arr.reshape(-1).tolist())
        t.tensor_shape.CopyFrom(tensor_util.make_tensor_proto(arr).tensor_shape)
    else:
        t = tensor_util.make_tensor_proto(arr)
    v = summary_pb2.Summary.Value(tag=tag, tensor=t)
    if metadata:
        v.metadata.plugin_data.plugin_name = "tb_plus_trace"
        v.metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    vals = [v]
    if extra_value is not None:
        vals.append(summary_pb2.Summary.Value(tag=extra_value[0], tensor=tensor_util.make_tensor_proto(
            np.asarray(extra_value[1], np.float32))))
    return event_pb2.Event(wall_time=1000.0 + step, step=step, summary=summary_pb2.Summary(value=vals))


def test_same_values_as_the_protobuf_reader(tmp_path):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    rng = np.random.default_rng(0)
    w = EventFileWriter(str(tmp_path / "logs" / "r"))
    expect = {}
    for step in range(300):
        m = rng.standard_normal((5, 3)).astype(np.float32)
        if step == 7:
            m[1, 1] = np.nan
        kw = {}
        if step == 0:
            kw["metadata"] = True  # the first record carries the tag's metadata: protobuf path
        if step == 10:
            kw["float_val"] = True  # not raw bytes: protobuf path
        if step == 20:
            # two values in one event: this tag's tensor is not at the end of the record
            kw["extra_value"] = ("other", np.zeros((5, 3)))
        if step == 30:
            w.add_event(_event("t", step, np.zeros((2, 2))))  # another shape: left out
            continue
        if step == 40:
            # another tag whose tensor happens to have the same bytes, alone in its event
            w.add_event(_event("u", step, m))
            continue
        w.add_event(_event("t", step, m, **kw))
        expect[step] = m
    w.close()
    ld = Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"))
    ld.refresh()
    steps, walls, values = ld.packed_tensors("r", "t", (5, 3))
    assert steps.tolist() == sorted(expect)
    assert walls.tolist() == [1000.0 + s for s in sorted(expect)]
    np.testing.assert_array_equal(values, np.stack([expect[s] for s in sorted(expect)]))
    slow = [d for d in ld.tensors("r", "t") if d.numpy.shape == (5, 3)]
    assert [d.step for d in slow] == steps.tolist()
    np.testing.assert_array_equal(np.stack([d.numpy for d in slow]), values)
    with pytest.raises(KeyError):
        ld.packed_tensors("r", "nope", (5, 3))


def test_tracer_files(tmp_path):
    torch = pytest.importorskip("torch")
    from tb_plus.trace import Tracer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracer = Tracer(model, opt, logdir=str(tmp_path / "logs" / "m"), every=1, histograms_every=0)
    for _ in range(50):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    tracer.close()
    ld = Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"))
    ld.refresh()
    for tag in ("trace/params", "trace/activations"):
        slow = ld.tensors("m", tag)
        shape = slow[0].numpy.shape
        steps, _, values = ld.packed_tensors("m", tag, shape)
        assert steps.tolist() == [d.step for d in slow] == list(range(50))
        np.testing.assert_array_equal(values, np.stack([d.numpy for d in slow]))
