"""One-line integrations (issue 20, item 4): the Hugging Face Trainer's and Lightning's callbacks
attach the tracer, write beside the framework's own scalars, and number steps as the framework does.
Each test runs when its package is installed (CI installs both)."""

import os

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def _logdir_tags(path):
    from tb_plus.store import Logdir

    ld = Logdir(str(path), cache_dir=str(path) + "_cache").refresh()
    return ld, {r: set(ld.tags(r)) for r in ld.runs()}


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)

    def forward(self, x, labels=None):
        out = self.l2(self.act(self.l1(x))).squeeze(-1)
        return {"loss": ((out - labels) ** 2).mean(), "logits": out}


def test_hf_trainer_callback(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from transformers import Trainer, TrainingArguments

    from tb_plus.trace.hf import TracerCallback

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    torch.manual_seed(0)
    data = [{"x": torch.randn(4), "labels": torch.randn(())} for _ in range(64)]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, logging_steps=1, report_to=["tensorboard"],
                             per_device_train_batch_size=8, use_cpu=True, save_strategy="no", disable_tqdm=True,
                             learning_rate=1e-2)
    callback = TracerCallback(every=1, histograms_every=0)
    Trainer(model=Tiny(), args=args, train_dataset=data, callbacks=[callback]).train()
    assert callback.tracer is None  # closed on train end
    ld, tags = _logdir_tags(tmp_path / "out" / "runs")
    (run,) = [r for r, t in tags.items() if "train/loss" in t]  # one run: the trace beside the Trainer's scalars
    assert "trace/grad_norm/l1.weight" in tags[run] and "trace/dead_fraction/act" in tags[run]
    loss_steps = ld.scalars(run, "train/loss").step.tolist()
    assert loss_steps == [1, 2, 3, 4, 5, 6]
    assert ld.scalars(run, "trace/grad_norm/l1.weight").step.tolist() == loss_steps  # the Trainer's numbering


class Binary(nn.Module):
    """A tiny binary classifier: one logit per example, BCE loss."""

    def __init__(self):
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)

    def forward(self, x, labels=None):
        logits = self.l2(self.act(self.l1(x))).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
        return out


def _binary_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = ((x[:, 0] - 0.5 * x[:, 1] + torch.randn(n, generator=g)) > 0).float()
    return x, y


def _reference_auc(model, x, y):
    """scikit-learn's AUC of the model's scores, and the accumulator's bucket error bound for them."""
    from sklearn.metrics import roc_auc_score

    from tb_plus.evaluation import BinaryAccumulator

    with torch.no_grad():
        p = torch.sigmoid(model(x)["logits"].double()).numpy()
    return roc_auc_score(y.numpy(), p), BinaryAccumulator().update(p, y.numpy()).auc_error_bound()


def test_hf_evaluation_metrics(tmp_path, monkeypatch):
    """compute_metrics=evaluation_metrics(callback): the evaluation counts land in the Trainer's run at its
    global step, TensorBoard+ reads the AUC from them, and the Trainer logs the same AUC."""
    pytest.importorskip("transformers")
    pytest.importorskip("sklearn")
    from transformers import Trainer, TrainingArguments

    from tb_plus.trace.hf import TracerCallback, evaluation_metrics

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    torch.manual_seed(0)
    xt, yt = _binary_data(64, 1)
    xe, ye = _binary_data(300, 2)
    train = [{"x": a, "labels": b} for a, b in zip(xt, yt)]
    evals = [{"x": a, "labels": b} for a, b in zip(xe, ye)]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, logging_steps=1, report_to=["tensorboard"],
                             per_device_train_batch_size=8, per_device_eval_batch_size=64, use_cpu=True,
                             save_strategy="no", disable_tqdm=True, learning_rate=1e-2, eval_strategy="steps",
                             eval_steps=3)
    callback = TracerCallback(every=1, histograms_every=0)
    model = Binary()
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evals, callbacks=[callback],
                      compute_metrics=evaluation_metrics(callback))
    trainer.train()
    ld, tags = _logdir_tags(tmp_path / "out" / "runs")
    (run,) = [r for r, t in tags.items() if "train/loss" in t]  # one run: evaluation, trace, Trainer scalars
    assert {"eval/scores/auc_roc", "eval/scores/average_precision", "trace/grad_norm/l1.weight"} <= tags[run]
    auc = ld.scalars(run, "eval/scores/auc_roc")
    assert auc.step.tolist() == [3, 6]  # the Trainer's global step at each evaluation
    want, bound = _reference_auc(model, xe, ye)  # the weights after step 6
    assert abs(auc.value[-1] - want) <= bound + 1e-12
    logged = [h for h in trainer.state.log_history if "eval_auc_roc" in h]
    assert [h["step"] for h in logged] == [3, 6]  # returned as metrics: in the Trainer's logs too
    assert logged[-1]["eval_auc_roc"] == pytest.approx(auc.value[-1], abs=1e-12)
    assert ld.scalars(run, "eval/auc_roc").step.tolist() == [3, 6]  # the Trainer's own scalar of it


def test_lightning_callback(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import TensorBoardLogger

    from tb_plus.trace.lightning import TracerCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Tiny()

        def training_step(self, batch, _):
            loss = self.net(batch[0], batch[1])["loss"]
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64))
    logger = TensorBoardLogger(str(tmp_path / "logs"), name="exp")
    callback = TracerCallback(every=1, histograms_every=0)
    trainer = L.Trainer(max_steps=6, logger=logger, callbacks=[callback], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                        accelerator="cpu", devices=1)
    trainer.fit(Module(), torch.utils.data.DataLoader(ds, batch_size=8))
    assert callback.tracer is None
    ld, tags = _logdir_tags(tmp_path / "logs")
    (run,) = [r for r, t in tags.items() if "train_loss" in t]
    assert os.path.basename(run) == "version_0" and "trace/grad_norm/net.l1.weight" in tags[run]
    assert ld.scalars(run, "trace/grad_norm/net.l1.weight").step.tolist() == list(range(6))


def test_lightning_evaluation_callback(tmp_path):
    """validation_step returns {"logits", "labels"}: the counts are written at validation end into the logger's
    run at trainer.global_step, TensorBoard+ reads the AUC from them, and val_auc_roc is logged."""
    L = pytest.importorskip("lightning.pytorch")
    pytest.importorskip("sklearn")
    from lightning.pytorch.loggers import TensorBoardLogger

    from tb_plus.trace.lightning import EvaluationCallback, TracerCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Binary()

        def training_step(self, batch, _):
            return self.net(batch[0], batch[1])["loss"]

        def validation_step(self, batch, _):
            return {"logits": self.net(batch[0])["logits"], "labels": batch[1]}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    xt, yt = _binary_data(64, 1)
    xe, ye = _binary_data(300, 2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xe, ye), batch_size=64)
    logger = TensorBoardLogger(str(tmp_path / "logs"), name="exp")
    evaluation = EvaluationCallback()
    trainer = L.Trainer(max_steps=6, val_check_interval=3, logger=logger, enable_checkpointing=False,
                        callbacks=[TracerCallback(every=1, histograms_every=0), evaluation],
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                        accelerator="cpu", devices=1)  # the sanity check's 2 batches are not counted
    module = Module()
    trainer.fit(module, loader, val)
    ld, tags = _logdir_tags(tmp_path / "logs")
    (run,) = [r for r, t in tags.items() if "val/scores/auc_roc" in t]
    assert os.path.basename(run) == "version_0" and "trace/grad_norm/net.l1.weight" in tags[run]
    auc = ld.scalars(run, "val/scores/auc_roc")
    assert auc.step.tolist() == [3, 6]  # trainer.global_step at each validation
    want, bound = _reference_auc(module.net, xe, ye)
    assert abs(auc.value[-1] - want) <= bound + 1e-12
    assert float(trainer.callback_metrics["val_auc_roc"]) == pytest.approx(auc.value[-1], abs=1e-6)
    assert evaluation.last["auc_roc"] == auc.value[-1]
    acc = ld.tensors(run, "val/scores")[-1].numpy
    assert acc[1:].sum() == len(ye)  # every validation example counted once, none from the sanity check
