"""The tracers' writing side, without torch or TensorFlow: a background thread that writes events
once the statistics they hold are ready, and the events themselves."""

from __future__ import annotations

import queue
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
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self._efw = EventFileWriter(str(target), filename_suffix=".tb_plus_trace")
            self._add = self._efw.add_event
            self._owned = True
        else:
            fw = getattr(target, "file_writer", None) or target._get_file_writer()
            if type(fw).__module__.startswith("tensorboardX"):
                from tensorboardX.proto import event_pb2 as tbx_event_pb2

                self._add = lambda ev: fw.add_event(tbx_event_pb2.Event.FromString(ev.SerializeToString()))
            else:
                self._add = fw.add_event
            self._efw, self._owned = fw, False
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
                    self._add(ev)
            except Exception as e:  # never kill training for a statistic
                self.errors.append(repr(e))
            finally:
                self.q.task_done()

    def put(self, ready, build):
        self.q.put((ready, build))

    def flush(self):
        self.q.join()
        if hasattr(self._efw, "flush"):
            self._efw.flush()

    def close(self):
        self.q.put(None)
        self.join()
        if self._owned:
            self._efw.close()
        elif hasattr(self._efw, "flush"):
            self._efw.flush()


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
