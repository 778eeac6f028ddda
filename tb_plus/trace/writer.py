"""The tracers' writing side, without torch or TensorFlow: a background thread that writes events
once the statistics they hold are ready, and the events themselves."""

from __future__ import annotations

import itertools
import os
import queue
import socket
import struct
import threading
import time

import numpy as np


class EventWriter(threading.Thread):
    """Writes events handed over as (ready, build) pairs: waits for `ready` (a CUDA event, or None),
    then writes build() -> [Event]. Runs in the background so the training loop never waits."""

    def __init__(self, target):
        super().__init__(name="tb_plus-tracer", daemon=True)
        self.q = queue.Queue(maxsize=256)
        self.errors = []
        if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
            logdir = os.fsdecode(target)
        else:  # a SummaryWriter (torch or tensorboardX): our own file in its run directory
            logdir = getattr(target, "log_dir", None) or getattr(target, "logdir", None)
            if logdir is None and hasattr(target, "get_logdir"):
                logdir = target.get_logdir()
            if logdir is None:
                raise ValueError("cannot tell the log directory of writer %r" % (target,))
        self._file = RecordFile(logdir)
        self.start()

    def run(self):
        while True:
            item = self.q.get()
            if item is None:
                self.q.task_done()
                return
            ready, build = item
            try:
                if ready is not None:
                    ready.synchronize()
                for ev in build():
                    self._file.write(ev)
                if self.q.empty():
                    self._file.flush()
            except Exception as e:  # never kill training for a statistic
                self.errors.append(repr(e))
            finally:
                self.q.task_done()

    def put(self, ready, build):
        self.q.put((ready, build))

    def flush(self):
        self.q.join()
        self._file.flush()

    def close(self):
        self.q.put(None)
        self.join()
        self._file.close()


_FILES = itertools.count()


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C, in C (google-crc32c): TensorBoard's own writer computes it in Python
    when TensorFlow is absent, about 4 ms per 7 KB event, holding the GIL the training loop needs."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class RecordFile:
    """An event file of the tracer's own in `logdir` (TensorBoard reads every event file of a run's
    directory as that run): TFRecord framing with C CRCs, written only by the writer thread."""

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        name = "events.out.tfevents.%010d.%s.%d.%d.tb_plus_trace" % (
            int(time.time()), socket.gethostname(), os.getpid(), next(_FILES))
        self.path = os.path.join(logdir, name)
        self._f = open(self.path, "wb")
        from tensorboard.compat.proto import event_pb2

        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def write(self, event):
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._f.write(header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data)))

    def flush(self):
        self._f.flush()

    def close(self):
        self._f.close()


def tensor_event(tag, step, matrix, md=None, wall=None):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(matrix))
    if md is not None:
        value.metadata.CopyFrom(md)
    return event_pb2.Event(wall_time=wall or time.time(), step=int(step), summary=summary_pb2.Summary(value=[value]))


def histogram_event(tag, step, edges, counts, wall):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    data = np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = "histograms"
    md.data_class = summary_pb2.DATA_CLASS_TENSOR
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(data), metadata=md)
    return event_pb2.Event(wall_time=wall, step=int(step), summary=summary_pb2.Summary(value=[value]))




def scalar_event(tag, step, value, wall):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    value = summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
    return event_pb2.Event(wall_time=wall, step=int(step), summary=summary_pb2.Summary(value=[value]))
