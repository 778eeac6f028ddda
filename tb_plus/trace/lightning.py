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

Evaluation of a classifier, from what `validation_step` returns:

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"logits": self(x), "labels": y}     # or "scores"/"probs"/"preds" (probabilities), "target"

    trainer = lightning.Trainer(..., callbacks=[TracerCallback(), EvaluationCallback()])

EvaluationCallback counts each validation's scores against their labels in tb_plus evaluation
accumulators (tb_plus.trace.evaluation: [n] or [n, 1] scores are a binary classifier's, [n, 2] a
two-class softmax's, [n, C] one versus rest per class; labels below 0 left out). It looks in the
returned dict for the scores under "logits" (passed through a sigmoid or softmax), else "scores",
"probs" or "preds" (taken as probabilities; `from_logits=` overrides), and for the labels under
"labels", "target", "targets" or "y"; batches that return something else are skipped, as is the
sanity check; the batches of several validation dataloaders count together. At validation end it writes, on global rank 0 and at `trainer.global_step`, the
summary `val/scores` (or `val/scores/<class>`) where TracerCallback writes (TensorBoard+ reads ROC and
PR curves and the series `val/scores/auc_roc`, `.../average_precision` from it), and logs `val_auc_roc`
and `val_average_precision` with `pl_module.log` (for checkpointing or early stopping on them). Under
several processes each rank counts its own batches and the counts are summed across ranks (one
all_gather_object of the non-empty buckets) before anything is written or logged.
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

        where = _target(trainer, self.logdir)  # a directory, or the TensorBoardLogger's SummaryWriter
        target = {"logdir": where} if isinstance(where, str) or hasattr(where, "__fspath__") else {"writer": where}
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


class EvaluationCallback(Callback):
    SCORE_KEYS = ("logits", "scores", "probs", "preds")  # the first one present is used
    LABEL_KEYS = ("labels", "target", "targets", "y")

    def __init__(self, tag="val/scores", logdir=None, *, from_logits=None, class_names=None, log_prefix="val_"):
        """from_logits: None (by the key: "logits" are logits, the others probabilities), True or False;
        log_prefix: the names of the metrics logged with pl_module.log (None: not logged)."""
        super().__init__()
        self.tag, self.logdir, self.from_logits = tag, logdir, from_logits
        self.class_names, self.log_prefix = class_names, log_prefix
        self.scores = None
        self.last = None  # the metrics of the last validation

    def _new(self):
        from tb_plus.trace.evaluation import ClassifierScores

        return ClassifierScores(self.tag, self.class_names)

    def on_validation_epoch_start(self, trainer, pl_module):
        self.scores = self._new()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.sanity_checking or not hasattr(outputs, "keys"):
            return
        skey = next((k for k in self.SCORE_KEYS if k in outputs), None)
        lkey = next((k for k in self.LABEL_KEYS if k in outputs), None)
        if skey is None or lkey is None:
            return
        if self.scores is None:
            self.scores = self._new()
        logits = skey == "logits" if self.from_logits is None else self.from_logits
        self.scores.update(outputs[skey], outputs[lkey], logits)

    def on_validation_epoch_end(self, trainer, pl_module):
        scores, self.scores = self.scores, None
        if trainer.sanity_checking or scores is None:
            return
        if trainer.world_size > 1:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, scores.to_tensors())
                scores.merge_gathered(gathered)
        if not scores:
            return
        if trainer.is_global_zero:
            scores.write(_target(trainer, self.logdir), trainer.global_step)
        self.last = scores.metrics()
        if self.log_prefix is not None:
            for name, value in self.last.items():
                pl_module.log(self.log_prefix + name, value)


def _target(trainer, logdir):
    """Where the callbacks write: `logdir`, else the TensorBoardLogger's SummaryWriter, else the log directory."""
    if logdir:
        return logdir
    experiment = getattr(trainer.logger, "experiment", None) if trainer.logger is not None else None
    if experiment is not None and hasattr(experiment, "add_scalar"):
        return experiment
    return trainer.log_dir or trainer.default_root_dir
