"""The tracer in the Hugging Face Trainer, in one line (needs `transformers`; imported only here).

    from tb_plus.trace.hf import TracerCallback
    trainer = Trainer(model=model, args=args, ..., callbacks=[TracerCallback()])

On train begin the callback attaches a tb_plus Tracer (budget mode unless `every=` is given) to the
Trainer's model and optimizer (the torch optimizer inside accelerate's wrapper, so its step hooks see
each update, once per gradient accumulation) and closes it on train end. Only the main process
traces (`state.is_world_process_zero`): under DistributedDataParallel its gradients are already
all-reduced. Steps follow the Trainer's `global_step` (the update that makes global_step k is traced
as step k, the step the Trainer logs its loss at), resumed runs included.

Where it writes: `logdir=` if given; else the Trainer's logging directory (`args.logging_dir` in
transformers 4, `$TENSORBOARD_LOGGING_DIR` in 5); else the newest directory under
`<output_dir>/runs/` (where the Trainer's TensorBoardCallback writes, when it ran first), else
`<output_dir>/runs/tb_plus_trace`. Other keyword arguments go to Tracer.
"""

from __future__ import annotations

import os

from transformers import TrainerCallback


class TracerCallback(TrainerCallback):
    def __init__(self, logdir=None, **tracer_kw):
        self.logdir = logdir
        self.tracer_kw = tracer_kw
        self.tracer = None

    def _logdir(self, args):
        if self.logdir:
            return self.logdir
        given = getattr(args, "logging_dir", None) or os.environ.get("TENSORBOARD_LOGGING_DIR")
        if given:
            return os.path.expanduser(given)
        runs = os.path.join(args.output_dir, "runs")
        try:
            subdirs = [os.path.join(runs, d) for d in os.listdir(runs) if os.path.isdir(os.path.join(runs, d))]
        except OSError:
            subdirs = []
        return max(subdirs, key=os.path.getmtime) if subdirs else os.path.join(runs, "tb_plus_trace")

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if not state.is_world_process_zero or model is None or self.tracer is not None:
            return
        from tb_plus.trace.torch import Tracer

        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
        self.tracer = Tracer(model, inner, logdir=self._logdir(args), **self.tracer_kw)
        self.tracer.global_step = int(state.global_step) + 1

    def on_train_end(self, args, state, control, **kwargs):
        if self.tracer is not None:
            self.tracer.close()
            self.tracer = None
