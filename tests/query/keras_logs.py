"""Logs in the Keras layout: hparams written into <run>/ with TensorBoard's hparams API (hp.hparams), the
TensorBoard callback's epoch scalars in <run>/train and <run>/validation.

With TensorFlow installed the logs are written by tf.summary (what Keras's callback uses); without it by
torch's SummaryWriter into the same layout (torch.utils.tensorboard.summary.hparams's session start info
written into <run>/ itself, scalars from one writer per sub-run).
"""

import os


def epoch_loss(lr: float, seed: int, split: str, epoch: int) -> float:
    return 1.0 / (1.0 + lr * 10 * epoch) + 0.01 * seed + (0.05 if split == "validation" else 0.0)


def write_keras_layout(root, runs, epochs=5):
    """runs: {run name: {hparam: value}} (each needs 'lr' and 'seed'); writes epoch_loss and
    epoch_accuracy for `epochs` epochs into <run>/train and <run>/validation. Returns the writer used
    ('tensorflow' or 'torch')."""
    try:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp_api
    except ImportError:
        tf = None
    for run, hp in runs.items():
        path = os.path.join(str(root), run)
        if tf is not None:
            w = tf.summary.create_file_writer(path)
            with w.as_default():
                hp_api.hparams(hp)
            w.close()
        else:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams

            exp, ssi, sei = hparams(hp, {})
            w = SummaryWriter(path)
            fw = w._get_file_writer()
            for s in (exp, ssi, sei):
                fw.add_summary(s)
            w.close()
        for split in ("train", "validation"):
            sub = os.path.join(path, split)
            values = [(e, epoch_loss(hp["lr"], hp["seed"], split, e), 0.5 + 0.05 * e) for e in range(epochs)]
            if tf is not None:
                w = tf.summary.create_file_writer(sub)
                with w.as_default():
                    for e, loss, acc in values:
                        tf.summary.scalar("epoch_loss", loss, step=e)
                        tf.summary.scalar("epoch_accuracy", acc, step=e)
                w.close()
            else:
                from torch.utils.tensorboard import SummaryWriter

                w = SummaryWriter(sub)
                for e, loss, acc in values:
                    w.add_scalar("epoch_loss", loss, e)
                    w.add_scalar("epoch_accuracy", acc, e)
                w.close()
    return "torch" if tf is None else "tensorflow"
