"""Fixture helpers for the writer-equivalence tests of ``tb_plus.store``.

Three groups of helpers live here:

* ``write_*`` functions: each writes a small but edge-case-rich log directory
  with one real writer (torch, tensorboardX, tf.summary v2, tf.compat.v1, the
  Keras TensorBoard callback).  They always close their writers.
* ``multiplexer_view(logdir)``: what stock TensorBoard sees, read through
  ``plugin_event_multiplexer.EventMultiplexer`` (nothing sampled away) and
  ``data_provider.MultiplexerDataProvider``.
* ``store_view(ld)`` / ``compare_views`` / ``assert_store_matches_multiplexer``:
  the same view built from a ``tb_plus.store.Logdir``, and a comparison that
  reports run, tag, first differing index and both values.

View format (both sides)::

    {run: {"scalars":    {tag: (step int64[], wall_time float64[], value float64[])},
           "tensors":    {tag: [(step, wall_time, ndarray), ...]},
           "histograms": sorted list of tags (subset of the "tensors" tags),
           "blobs":      sorted list of tags}}
"""

import math
import os
import time

import numpy as np

EXPERIMENT_ID = ""
DOWNSAMPLE_ALL = 10**9

# Scalars with special float values used by several writers.
SPECIAL_VALUES = [
    float("nan"),
    float("inf"),
    float("-inf"),
    0.0,
    -0.0,
    1e-30,
    -3.0e38,
    3.0e38,
    0.1,
    -1.5,
]
# Steps that stress int64 handling: negatives, zero, and huge ones.
SPECIAL_STEPS = [-(2**40), -7, -1, 0, 1, 2**31, 2**32 + 5, 2**62, 2**62 + 1]
UNICODE_TAGS = ["损失/训练", "émoji/🙂", "a/b/c/d"]


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def _rng(seed=0):
    return np.random.RandomState(seed)


def write_torch(logdir):
    """torch.utils.tensorboard.SummaryWriter, most add_* methods."""
    from torch.utils.tensorboard import SummaryWriter

    rng = _rng(1)
    w = SummaryWriter(log_dir=logdir, flush_secs=1)
    try:
        for i in range(60):
            w.add_scalar("loss", 1.0 / (i + 1), i)
            w.add_scalar("lr", 0.1 * (0.97**i), i)
        for i, v in enumerate(SPECIAL_VALUES):
            w.add_scalar("special/values", v, i)
        for i, s in enumerate(SPECIAL_STEPS):
            w.add_scalar("special/steps", float(i), s)
        for tag in UNICODE_TAGS:
            for i in range(5):
                w.add_scalar(tag, float(i) * 2.5, i)
        # add_scalars: one sub-run per key ("scalars_group_train", ...), each
        # holding the tag "scalars/group".
        for i in range(20):
            w.add_scalars(
                "scalars/group",
                {"train": float(i), "val": float(i) / 2, "test": -float(i)},
                i,
            )
        # New-style (TF2-like) tensor scalars, float and double precision.
        for i in range(20):
            w.add_scalar("new/style", float(i) / 3, i, new_style=True)
            w.add_scalar(
                "new/double", 1.0 / 3 + i, i, new_style=True, double_precision=True
            )
        w.add_scalar("new/style_nan", float("nan"), 0, new_style=True)
        for i in range(5):
            w.add_histogram("hist/normal", rng.randn(500) + i, i)
            w.add_histogram("hist/ints", rng.randint(0, 10, size=200), i)
        w.add_histogram("hist/constant", np.full(50, 3.0), 0)
        for i in range(3):
            w.add_text("text/notes", "step %d: **markdown** 🙂 ünïcode" % i, i)
        w.add_image("image/tiny", rng.rand(3, 4, 5), 0)
        w.add_image("image/tiny", rng.rand(3, 4, 5), 1)
        for i in range(3):
            labels = rng.randint(0, 2, size=40)
            preds = rng.rand(40)
            w.add_pr_curve("pr/curve", labels, preds, i, num_thresholds=11)
        w.add_hparams(
            {"lr": 0.01, "batch": 32, "optimizer": "adam", "flag": True},
            {"hparam/accuracy": 0.75, "hparam/loss": 0.25},
        )
    finally:
        w.close()


def write_torch_restart(logdir):
    """Two writers on the same directory: steps 0..9, then (restart) 5..14."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(log_dir=logdir, flush_secs=1)
    try:
        for s in range(10):
            w.add_scalar("loss", float(s), s)
            w.add_scalar("acc", float(s) / 10, s)
    finally:
        w.close()
    # Event file names contain the time in whole seconds; make sure the
    # second file sorts after the first, as a real restart would.
    time.sleep(1.05)
    w = SummaryWriter(log_dir=logdir, flush_secs=1)
    try:
        for s in range(5, 15):
            w.add_scalar("loss", 100.0 + s, s)
            w.add_scalar("acc", 1.0 + s / 10, s)
    finally:
        w.close()


def write_tensorboardx(logdir):
    """tensorboardX.SummaryWriter."""
    from tensorboardX import SummaryWriter

    rng = _rng(2)
    w = SummaryWriter(logdir=logdir, flush_secs=1)
    try:
        for i in range(50):
            w.add_scalar("train/loss", 2.0 / (i + 1), i)
        for i, v in enumerate(SPECIAL_VALUES):
            w.add_scalar("special/values", v, i)
        for i, s in enumerate(SPECIAL_STEPS):
            w.add_scalar("special/steps", float(i), s)
        for tag in UNICODE_TAGS:
            w.add_scalar(tag, 1.25, 0)
        for i in range(15):
            w.add_scalars("grp", {"a": float(i), "b": float(i) ** 2}, i)
        for i in range(4):
            w.add_histogram("hist/normal", rng.randn(300), i)
        for i in range(3):
            w.add_text("text/notes", "tbx text %d ✓" % i, i)
        w.add_hparams(
            {"lr": 0.1, "layers": 3, "act": "relu"},
            {"hparam/score": 0.5},
            name="hp_session",
        )
    finally:
        w.close()


def write_tf2(logdir):
    """tf.summary v2 (create_file_writer): scalars are tensors whose plugin
    metadata is written only with a tag's first record."""
    import tensorflow as tf

    rng = _rng(3)
    w = tf.summary.create_file_writer(logdir)
    try:
        with w.as_default():
            for i in range(40):
                tf.summary.scalar("loss", 1.0 / (i + 1), step=i)
            for i, v in enumerate(SPECIAL_VALUES):
                tf.summary.scalar("special/values", v, step=i)
            for i, s in enumerate(SPECIAL_STEPS):
                tf.summary.scalar("special/steps", float(i), step=s)
            for tag in UNICODE_TAGS:
                tf.summary.scalar(tag, 7.5, step=0)
            for i in range(4):
                tf.summary.histogram(
                    "hist/normal", rng.randn(200).astype(np.float32), step=i
                )
            tf.summary.histogram("hist/empty", np.zeros([0], np.float32), step=0)
            tf.summary.histogram("hist/constant", np.full([10], 2.0), step=0)
            for i in range(3):
                tf.summary.text("text/notes", "tf2 text %d 🙂" % i, step=i)
            tf.summary.text("text/matrix", [["a", "b"], ["c", "ü"]], step=0)
            # A raw tensor summary with no plugin metadata at all.
            tf.summary.write("raw/tensor", tf.constant([1, 2, 3], tf.int64), step=0)
        w.flush()
    finally:
        w.close()
    # A restart in the same run directory: a new writer/file whose first record
    # of each tag carries the metadata again; steps overlap (0..9 then 5..14).
    for steps, offset in ((range(10), 0.0), (range(5, 15), 100.0)):
        w = tf.summary.create_file_writer(os.path.join(logdir, "restart"))
        try:
            with w.as_default():
                for i in steps:
                    tf.summary.scalar("loss", offset + i, step=i)
                    tf.summary.histogram("h", [float(i), offset], step=i)
        finally:
            w.close()
        time.sleep(1.05)  # next file name sorts after this one
    # A second TF2 writer into a sub-run with a different writer: same tag, but
    # metadata again only on the first record of the new file.
    w = tf.summary.create_file_writer(os.path.join(logdir, "second"))
    try:
        with w.as_default():
            for i in range(10):
                tf.summary.scalar("loss", float(i), step=i)
    finally:
        w.close()


def write_tf1(logdir):
    """tf.compat.v1.summary.FileWriter with hand-built legacy Summary protos."""
    import tensorflow as tf

    v1 = tf.compat.v1
    Summary = v1.Summary

    def add(fw, values, step):
        fw.add_summary(Summary(value=values), global_step=step)

    with tf.Graph().as_default():
        fw = v1.summary.FileWriter(logdir)
        try:
            for i in range(30):
                add(fw, [Summary.Value(tag="loss", simple_value=1.0 / (i + 1))], i)
            for i, v in enumerate(SPECIAL_VALUES):
                add(fw, [Summary.Value(tag="special/values", simple_value=v)], i)
            for i, s in enumerate(SPECIAL_STEPS):
                add(fw, [Summary.Value(tag="special/steps", simple_value=i)], s)
            for tag in UNICODE_TAGS:
                add(fw, [Summary.Value(tag=tag, simple_value=4.0)], 0)
            # Several values merged into one Summary / one event.
            for i in range(10):
                add(
                    fw,
                    [
                        Summary.Value(tag="merged/a", simple_value=float(i)),
                        Summary.Value(tag="merged/b", simple_value=-float(i)),
                        Summary.Value(tag="merged/c", simple_value=i * 0.5),
                    ],
                    i,
                )
            # Legacy HistogramProto, with +-DBL_MAX outer limits and empty edge
            # buckets (exercises the data_compat migration).
            dbl_max = np.finfo(np.float64).max
            histo = v1.HistogramProto(
                min=-1.5,
                max=2.5,
                num=10,
                sum=3.0,
                sum_squares=12.0,
                bucket_limit=[-dbl_max, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, dbl_max],
                bucket=[0, 0, 2, 3, 4, 1, 0, 0],
            )
            empty = v1.HistogramProto(
                min=0, max=0, num=0, bucket_limit=[1.0, dbl_max], bucket=[0, 0]
            )
            for i in range(3):
                add(fw, [Summary.Value(tag="histo/legacy", histo=histo)], i)
            add(fw, [Summary.Value(tag="histo/empty", histo=empty)], 0)
        finally:
            fw.close()

    # A TF1 session restart: SessionLog.START at step 0, steps 0..9, a second
    # START at step 5, then steps 5..14.  Stock TensorBoard purges 5..9 of the
    # first session (file_version >= 2 path).
    with tf.Graph().as_default():
        fw = v1.summary.FileWriter(os.path.join(logdir, "restart"))
        try:
            start = v1.SessionLog(status=v1.SessionLog.START)
            fw.add_session_log(start, global_step=0)
            for i in range(10):
                add(fw, [Summary.Value(tag="loss", simple_value=float(i))], i)
            fw.add_session_log(start, global_step=5)
            for i in range(5, 15):
                add(fw, [Summary.Value(tag="loss", simple_value=100.0 + i)], i)
        finally:
            fw.close()


def write_keras(logdir):
    """Keras TensorBoard callback: tiny model.fit for 2 epochs, histogram_freq=1."""
    import tensorflow as tf

    rng = _rng(4)
    x = rng.rand(64, 4).astype("float32")
    y = rng.rand(64, 1).astype("float32")
    xv = rng.rand(16, 4).astype("float32")
    yv = rng.rand(16, 1).astype("float32")
    tf.random.set_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(4,)),
            tf.keras.layers.Dense(3, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    cb = tf.keras.callbacks.TensorBoard(
        log_dir=logdir, histogram_freq=1, write_graph=True, profile_batch=0
    )
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        validation_data=(xv, yv),
        callbacks=[cb],
        verbose=0,
    )


def write_root_and_nested(logdir):
    """Events directly in the logdir (run '.') plus nested runs."""
    from torch.utils.tensorboard import SummaryWriter

    for i, sub in enumerate(["", "a/b", "a/c", "z"]):
        path = os.path.join(logdir, sub) if sub else logdir
        w = SummaryWriter(log_dir=path, flush_secs=1)
        try:
            for s in range(12):
                w.add_scalar("metric", float(s * (i + 1)), s)
            w.add_scalar("only_in_%d" % i, 1.0, 0)
        finally:
            w.close()
    # A run whose event file holds only the file_version header, and stray
    # files that are not event files.
    SummaryWriter(log_dir=os.path.join(logdir, "empty"), flush_secs=1).close()
    with open(os.path.join(logdir, "notes.txt"), "w") as f:
        f.write("not an event file\n")
    os.makedirs(os.path.join(logdir, "no_events"))
    with open(os.path.join(logdir, "no_events", "config.json"), "w") as f:
        f.write("{}\n")


WRITERS = {
    "torch": write_torch,
    "torch_restart": write_torch_restart,
    "tensorboardx": write_tensorboardx,
    "root_and_nested": write_root_and_nested,
    "tf2": write_tf2,
    "tf1": write_tf1,
    "keras": write_keras,
}
TF_WRITERS = {"tf2", "tf1", "keras"}


# --------------------------------------------------------------------------
# Stock TensorBoard side
# --------------------------------------------------------------------------


def load_multiplexer(logdir):
    """An EventMultiplexer over ``logdir`` that keeps every event, reloaded."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    keep_all = {key: 0 for key in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    keep_all[event_accumulator.TENSORS] = 0
    # tensor_size_guidance is keyed by plugin name; anything not listed falls
    # back to size_guidance[TENSORS] == 0 (keep everything) as well.
    tensor_keep_all = {
        name: 0
        for name in (
            "scalars",
            "histograms",
            "images",
            "audio",
            "text",
            "pr_curves",
            "hparams",
            "custom_scalars",
            "graph_keras_model",
            "mesh",
            "",
        )
    }
    mux = plugin_event_multiplexer.EventMultiplexer(
        size_guidance=keep_all, tensor_size_guidance=tensor_keep_all
    )
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return mux


def multiplexer_view(logdir):
    """What stock TensorBoard's data provider serves for ``logdir``."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.compat.proto import summary_pb2

    logdir = str(logdir)
    ctx = context.RequestContext()
    mux = load_multiplexer(logdir)
    dp = data_provider.MultiplexerDataProvider(mux, logdir)

    view = {}
    for run in dp.list_runs(ctx, experiment_id=EXPERIMENT_ID):
        view[run.run_name] = {
            "scalars": {},
            "tensors": {},
            "histograms": [],
            "blobs": [],
        }

    all_metadata = mux.AllSummaryMetadata()
    plugins = sorted(
        {
            md.plugin_data.plugin_name
            for tags in all_metadata.values()
            for md in tags.values()
        }
    )
    for plugin in plugins:
        scalars = dp.read_scalars(
            ctx,
            experiment_id=EXPERIMENT_ID,
            plugin_name=plugin,
            downsample=DOWNSAMPLE_ALL,
        )
        for run, tags in scalars.items():
            for tag, data in tags.items():
                assert tag not in view[run]["scalars"], (run, tag)
                view[run]["scalars"][tag] = (
                    np.array([d.step for d in data], dtype=np.int64),
                    np.array([d.wall_time for d in data], dtype=np.float64),
                    np.array([d.value for d in data], dtype=np.float64),
                )
        tensors = dp.read_tensors(
            ctx,
            experiment_id=EXPERIMENT_ID,
            plugin_name=plugin,
            downsample=DOWNSAMPLE_ALL,
        )
        for run, tags in tensors.items():
            for tag, data in tags.items():
                assert tag not in view[run]["tensors"], (run, tag)
                view[run]["tensors"][tag] = [
                    (int(d.step), float(d.wall_time), d.numpy) for d in data
                ]
                if plugin == "histograms":
                    view[run]["histograms"].append(tag)
        blobs = dp.list_blob_sequences(
            ctx, experiment_id=EXPERIMENT_ID, plugin_name=plugin
        )
        for run, tags in blobs.items():
            view[run]["blobs"].extend(tags)

    # Sanity: every data-class-tagged series ended up somewhere.
    for run, tags in all_metadata.items():
        for tag, md in tags.items():
            if md.data_class == summary_pb2.DATA_CLASS_SCALAR:
                assert tag in view[run]["scalars"], (run, tag)
            elif md.data_class == summary_pb2.DATA_CLASS_TENSOR:
                assert tag in view[run]["tensors"], (run, tag)
            elif md.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE:
                assert tag in view[run]["blobs"], (run, tag)
    for run in view.values():
        run["histograms"].sort()
        run["blobs"].sort()
    return view


def multiplexer_plugins(logdir):
    """{run: {tag: (plugin_name, data_class name)}} for every tag, including
    those with DATA_CLASS_UNKNOWN (invisible through the data provider)."""
    from tensorboard.compat.proto import summary_pb2

    mux = load_multiplexer(str(logdir))
    return {
        run: {
            tag: (
                md.plugin_data.plugin_name,
                summary_pb2.DataClass.Name(md.data_class),
            )
            for tag, md in tags.items()
        }
        for run, tags in mux.AllSummaryMetadata().items()
    }


# --------------------------------------------------------------------------
# Store side and comparison
# --------------------------------------------------------------------------


def open_store(logdir, cache_dir, **kwargs):
    from tb_plus.store import Logdir

    return Logdir(str(logdir), cache_dir=str(cache_dir), **kwargs)


def store_view(ld):
    """The same view as ``multiplexer_view``, built from a store ``Logdir``.

    Values are kept as the store returned them (no conversion), so that
    ``store_contract_problems`` can check types and ``compare_views`` can
    check contents."""
    view = {}
    for run in ld.runs():
        entry = {"scalars": {}, "tensors": {}, "histograms": [], "blobs": []}
        derived = ld.derived_tags(run)  # tb_plus's own series read out of tensors: not TensorBoard's
        for tag in ld.tags(run, kind="scalars"):
            if tag in derived:
                continue
            s = ld.scalars(run, tag)
            entry["scalars"][tag] = (s.step, s.wall_time, s.value)
        for tag in ld.tags(run, kind="tensors"):
            entry["tensors"][tag] = [
                (d.step, d.wall_time, d.numpy) for d in ld.tensors(run, tag)
            ]
        entry["histograms"] = list(ld.tags(run, kind="histograms"))
        entry["blobs"] = list(ld.tags(run, kind="blobs"))
        view[run] = entry
    return view


def store_contract_problems(ld, view):
    """Type/order promises of the store API that a value comparison would not
    catch: sorted runs and tags, int64/float64/float64 ndarray scalar series."""
    problems = []
    runs = list(ld.runs())
    if runs != sorted(runs):
        problems.append("runs() not sorted: %r" % runs)
    for run, entry in view.items():
        for kind in ("scalars", "tensors", "histograms", "blobs"):
            tags = list(ld.tags(run, kind=kind))
            if tags != sorted(tags):
                problems.append("tags(%r, %r) not sorted: %r" % (run, kind, tags))
        for tag, arrays in entry["scalars"].items():
            for name, arr, dtype in zip(
                ("step", "wall_time", "value"), arrays, ("int64", "float64", "float64")
            ):
                if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype):
                    problems.append(
                        "run %r scalar %r: .%s is %s %s, expected %s ndarray"
                        % (run, tag, name, type(arr).__name__,
                           getattr(arr, "dtype", None), dtype)
                    )
        for tag, data in entry["tensors"].items():
            for step, wall, arr in data[:1]:
                if not isinstance(arr, np.ndarray):
                    problems.append(
                        "run %r tensor %r: .numpy is %s, expected ndarray"
                        % (run, tag, type(arr).__name__)
                    )
    return problems


def _fmt(x, limit=300):
    if isinstance(x, np.ndarray):
        text = "%s%s %r" % (x.dtype, list(x.shape), x.tolist())
    else:
        text = repr(x)
    return text if len(text) <= limit else text[:limit] + "...]"


def _first_diff(a, b):
    """Index of the first element where 1-D arrays a and b differ (NaN==NaN)."""
    n = min(len(a), len(b))
    for i in range(n):
        x, y = a[i], b[i]
        if x == y:
            continue
        if isinstance(x, float) or isinstance(y, float) or np.issubdtype(
            np.asarray(x).dtype, np.floating
        ):
            if math.isnan(float(x)) and math.isnan(float(y)):
                continue
        return i
    return n if len(a) != len(b) else None


def _is_string(arr):
    return arr.dtype.kind in ("O", "S", "U")


def _tensor_mismatch(expected, actual):
    """None if equal, else a description of how ndarray ``actual`` differs."""
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        return "shape %s != expected %s" % (actual.shape, expected.shape)
    if _is_string(expected):
        exp_list = expected.ravel().tolist()
        act_list = actual.ravel().tolist()
        for i, (x, y) in enumerate(zip(exp_list, act_list)):
            if type(x) is not type(y) or x != y:
                return "string element %d: store %r != expected %r" % (i, y, x)
        return None
    if expected.dtype != actual.dtype:
        return "dtype %s != expected %s" % (actual.dtype, expected.dtype)
    if not np.array_equal(expected, actual, equal_nan=expected.dtype.kind in "fc"):
        flat_e, flat_a = expected.ravel(), actual.ravel()
        i = _first_diff(flat_a.tolist(), flat_e.tolist())
        return "flat element %s: store %r != expected %r" % (
            i,
            flat_a[i].item(),
            flat_e[i].item(),
        )
    return None


def compare_views(expected, actual, label="store", max_problems=40):
    """List of human-readable mismatches between two views (empty if equal)."""
    problems = []
    exp_runs, act_runs = sorted(expected), sorted(actual)
    if exp_runs != act_runs:
        problems.append(
            "%s: run set differs: missing %r, extra %r"
            % (
                label,
                sorted(set(exp_runs) - set(act_runs)),
                sorted(set(act_runs) - set(exp_runs)),
            )
        )
    for run in exp_runs:
        if run not in actual:
            continue
        e, a = expected[run], actual[run]
        for kind in ("scalars", "tensors"):
            et, at = sorted(e[kind]), sorted(a[kind])
            if et != at:
                problems.append(
                    "%s: run %r %s tags differ: missing %r, extra %r"
                    % (
                        label,
                        run,
                        kind,
                        sorted(set(et) - set(at)),
                        sorted(set(at) - set(et)),
                    )
                )
        for kind in ("histograms", "blobs"):
            if sorted(e[kind]) != sorted(a[kind]):
                problems.append(
                    "%s: run %r %s tags differ: missing %r, extra %r"
                    % (
                        label,
                        run,
                        kind,
                        sorted(set(e[kind]) - set(a[kind])),
                        sorted(set(a[kind]) - set(e[kind])),
                    )
                )
        for tag in sorted(set(e["scalars"]) & set(a["scalars"])):
            for name, ex, ac in zip(
                ("step", "wall_time", "value"), e["scalars"][tag], a["scalars"][tag]
            ):
                ex, ac = np.asarray(ex), np.asarray(ac)
                if len(ac) != len(ex):
                    problems.append(
                        "%s: run %r scalar %r: %d points, expected %d (first %s "
                        "difference at index %s)"
                        % (
                            label,
                            run,
                            tag,
                            len(ac),
                            len(ex),
                            name,
                            _first_diff(ac.tolist(), ex.tolist()),
                        )
                    )
                    break
                if name == "step" and ac.dtype.kind not in "iu":
                    problems.append(
                        "%s: run %r scalar %r: step dtype %s is not integer"
                        % (label, run, tag, ac.dtype)
                    )
                try:
                    np.testing.assert_array_equal(ac, ex)
                    # assert_array_equal treats 0.0 == -0.0; TensorBoard keeps the sign.
                    if name == "value" and not np.array_equal(
                        np.signbit(ac.astype(np.float64)), np.signbit(ex)
                    ):
                        raise AssertionError("sign of zero differs")
                except AssertionError:
                    i = _first_diff(ac.tolist(), ex.tolist())
                    if i is None:  # signed zero
                        i = int(np.argmax(np.signbit(ac) != np.signbit(ex)))
                    problems.append(
                        "%s: run %r scalar %r: %s differs first at index %d: "
                        "store %r != expected %r (step %r)"
                        % (
                            label,
                            run,
                            tag,
                            name,
                            i,
                            ac[i].item(),
                            ex[i].item(),
                            np.asarray(e["scalars"][tag][0])[i].item(),
                        )
                    )
        for tag in sorted(set(e["tensors"]) & set(a["tensors"])):
            ex, ac = e["tensors"][tag], list(a["tensors"][tag])
            if len(ex) != len(ac):
                problems.append(
                    "%s: run %r tensor %r: %d data, expected %d; store steps %r, "
                    "expected steps %r"
                    % (
                        label,
                        run,
                        tag,
                        len(ac),
                        len(ex),
                        [int(d[0]) for d in ac][:30],
                        [int(d[0]) for d in ex][:30],
                    )
                )
                continue
            for i, ((es, ew, en), (as_, aw, an)) in enumerate(zip(ex, ac)):
                what = None
                en = np.asarray(en)
                if int(as_) != int(es):
                    what = "step %r != expected %r" % (as_, es)
                elif float(aw) != float(ew):
                    what = "wall_time %r != expected %r" % (aw, ew)
                else:
                    what = _tensor_mismatch(en, an)
                    if what is not None:
                        what += "\n      store:    %s\n      expected: %s" % (
                            _fmt(np.asarray(an)),
                            _fmt(en),
                        )
                if what is not None:
                    problems.append(
                        "%s: run %r tensor %r datum %d (step %r): %s"
                        % (label, run, tag, i, es, what)
                    )
                    break
        if len(problems) >= max_problems:
            problems.append("... (stopped after %d problems)" % len(problems))
            break
    return problems


def assert_views_equal(expected, actual, label="store"):
    problems = compare_views(expected, actual, label)
    if problems:
        raise AssertionError(
            "%d mismatch(es) against plugin_event_multiplexer:\n  %s"
            % (len(problems), "\n  ".join(problems))
        )


def assert_store_matches_multiplexer(logdir, cache_dir, expected=None, **kwargs):
    """Open ``logdir`` with the store and assert it serves exactly what
    TensorBoard's multiplexer serves.  Returns the store ``Logdir``."""
    if expected is None:
        expected = multiplexer_view(logdir)
    ld = open_store(logdir, cache_dir, **kwargs)
    actual = store_view(ld)
    assert_views_equal(expected, actual)
    contract = store_contract_problems(ld, actual)
    assert contract == [], "store API contract violations:\n  " + "\n  ".join(
        contract
    )
    problems = list(ld.problems())
    assert problems == [], "store reported problems on clean logs: %s" % [
        (p.path, p.kind, p.message) for p in problems
    ]
    return ld
