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
`<output_dir>/runs/tb_plus_trace`. Other keyword arguments go to Tracer; `trace=False` attaches no
tracer (for the evaluation metrics alone).

Evaluation (a callback never sees predictions, so the Trainer's `compute_metrics` does it):

    tracer = TracerCallback()
    trainer = Trainer(..., callbacks=[tracer], compute_metrics=evaluation_metrics(tracer))

counts each evaluation's scores against its labels in tb_plus evaluation accumulators
(tb_plus.trace.evaluation: logits of shape [n] or [n, 1] through a sigmoid, [n, 2] or [n, C] through a
softmax, C > 2 one versus rest per class; samples labelled -100 left out) and writes them, on the main
process, to the callback's directory at the Trainer's `global_step`: the summary `eval/scores` (or
`eval/scores/<class>`), from which TensorBoard+ reads ROC and PR curves and the series
`eval/scores/auc_roc`, `.../average_precision`. It returns `auc_roc` and `average_precision` (with
classes: their mean over the classes, and `auc_roc_<class>`, ...), which the Trainer logs as
`eval_auc_roc`, ... With `batch_eval_metrics=True` it counts batch by batch and writes on the last.
"""

from __future__ import annotations

import os

from transformers import TrainerCallback


class TracerCallback(TrainerCallback):
    def __init__(self, logdir=None, trace=True, **tracer_kw):
        self.logdir = logdir
        self.trace = trace
        self.tracer_kw = tracer_kw
        self.tracer = None
        self.args = self.state = None  # the Trainer's, as last seen (for evaluation_metrics)
        self._evaluations = []  # EvaluationMetrics made for this callback

    def _seen(self, args, state):
        self.args, self.state = args, state

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

    def on_init_end(self, args, state, control, **kwargs):
        self._seen(args, state)

    def on_prediction_step(self, args, state, control, **kwargs):
        self._seen(args, state)  # before compute_metrics, with the state of this evaluation

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self._seen(args, state)  # train() makes a new TrainerState
        if not self.trace or not state.is_world_process_zero or model is None or self.tracer is not None:
            return
        from tb_plus.trace.torch import Tracer

        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
        self.tracer = Tracer(model, inner, logdir=self._logdir(args), **self.tracer_kw)
        self.tracer.global_step = int(state.global_step) + 1

    def on_train_end(self, args, state, control, **kwargs):
        for e in self._evaluations:
            e.close()
        if self.tracer is not None:
            self.tracer.close()
            self.tracer = None


class EvaluationMetrics:
    """The Trainer's `compute_metrics`: see the module's docstring and evaluation_metrics()."""

    def __init__(self, callback, tag="eval/scores", from_logits=True, class_names=None, logdir=None):
        from tb_plus.trace.evaluation import ClassifierScores

        self.callback, self.tag, self.from_logits, self.logdir = callback, tag, from_logits, logdir
        self.scores = ClassifierScores(tag, class_names)
        self.class_names = class_names
        self._file = None
        callback._evaluations.append(self)

    def __call__(self, eval_pred, compute_result=True):
        from tb_plus.trace.evaluation import ClassifierScores

        preds, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(preds, (tuple, list)):  # the model returned more outputs: the logits come first
            preds = preds[0]
        if isinstance(labels, (tuple, list)):
            labels = labels[0]
        self.scores.update(preds, labels, self.from_logits)
        if not compute_result:
            return {}
        scores, self.scores = self.scores, ClassifierScores(self.tag, self.class_names)
        state, args = self.callback.state, self.callback.args
        if state is not None and state.is_world_process_zero and scores:
            from tb_plus.trace.writer import RecordFile

            logdir = self.logdir or self.callback._logdir(args)
            if self._file is None or os.path.dirname(self._file.path) != os.path.abspath(logdir):
                self.close()
                self._file = RecordFile(os.path.abspath(logdir))
            for ev in scores.events(state.global_step):
                self._file.write(ev)
            self._file.flush()
        return scores.metrics()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def evaluation_metrics(callback: TracerCallback, tag="eval/scores", *, from_logits=True, class_names=None,
                       logdir=None) -> EvaluationMetrics:
    """A `compute_metrics` for the Trainer that writes a classifier's evaluation summaries (ROC and PR
    curves, AUC series in TensorBoard+) beside `callback`'s statistics at the Trainer's global step and
    returns {"auc_roc", "average_precision"} (see the module's docstring). `callback` is the
    TracerCallback given to the same Trainer (it tells the step and the directory); `from_logits=False`
    when the model outputs probabilities; `class_names` names the classes' summaries (default: their
    index); `logdir` overrides the directory."""
    return EvaluationMetrics(callback, tag, from_logits, class_names, logdir)
