"""The tracer in PyTorch Lightning, in one line (needs `lightning`; imported only here).

    from tb_plus.trace.lightning import TracerCallback
    trainer = lightning.Trainer(..., callbacks=[TracerCallback()])

On fit start the callback attaches a tb_plus Tracer (budget mode unless `every=` is given) to the
LightningModule and its first optimizer, and closes it on fit end. It writes into the
TensorBoardLogger's run (its SummaryWriter, so the statistics sit beside the logged metrics), else
into `trainer.log_dir`, or `logdir=` when given. With precision="16-mixed" the precision plugin's
GradScaler is passed on (unscaled gradient statistics, skipped steps counted, the loss scale
recorded). Only global rank 0 traces. Steps follow `trainer.global_step`. Other keyword arguments go
to Tracer.
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback


class TracerCallback(Callback):
    def __init__(self, logdir=None, **tracer_kw):
        super().__init__()
        self.logdir = logdir
        self.tracer_kw = tracer_kw
        self.tracer = None

    def on_fit_start(self, trainer, pl_module):
        if trainer.global_rank != 0 or self.tracer is not None or not trainer.optimizers:
            return
        from tb_plus.trace.torch import Tracer

        target = {"logdir": self.logdir} if self.logdir else None
        if target is None:
            experiment = getattr(trainer.logger, "experiment", None) if trainer.logger is not None else None
            if experiment is not None and hasattr(experiment, "add_scalar"):
                target = {"writer": experiment}  # the TensorBoardLogger's SummaryWriter
            else:
                target = {"logdir": trainer.log_dir or trainer.default_root_dir}
        plugin = getattr(trainer.strategy, "precision_plugin", None) or getattr(trainer, "precision_plugin", None)
        scaler = getattr(plugin, "scaler", None)
        kw = dict(self.tracer_kw)
        if scaler is not None and "scaler" not in kw:
            kw["scaler"] = scaler
        optimizer = trainer.optimizers[0]
        self.tracer = Tracer(pl_module, getattr(optimizer, "optimizer", optimizer), **target, **kw)
        self.tracer.global_step = int(trainer.global_step)

    def on_fit_end(self, trainer, pl_module):
        if self.tracer is not None:
            self.tracer.close()
            self.tracer = None
