"""Real small causal-transformer trainings (demo/diagnostics_lm.py: bytes of the standard library's
own source files, 250 steps on this CPU, written at once in Megatron-, HF-Trainer- and Lightning-style
tags) diagnosed from their event files: the kind of each run is told from its tags, a healthy run
gives no warning or error, and a broken float16 loss scale (a NaN gradient on every step from 40% of
the run: every step overflows) gives its finding where the measured scale started to fall. What is
asserted holds whatever the floating-point path: the expectations come from the run's measurements
(demo.diagnostics_lm.label), and the NaN gradient of 0 x log(0) is the same on every CPU."""

import os
import sys
import tempfile

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboardX")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo import diagnostics_lm as lm  # noqa: E402
from demo.diagnostics_families import _hit  # noqa: E402
from tb_plus.diagnostics import Config, diagnose  # noqa: E402
from tb_plus.diagnostics.rundata import gather  # noqa: E402
from tb_plus.store import Logdir  # noqa: E402

SEVERE = ("warning", "error")


@pytest.fixture(scope="module")
def corpus():
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        ms = {s: lm.train(out, "small_cosine", s, 0, quick=True) for s in ("healthy", "fp16_broken")}
        torch.set_num_threads(threads)
        ld = Logdir(out, cache_dir=cache)
        ld.refresh()
        yield ld, ms


def test_kinds_from_the_writers_tags(corpus):
    ld, _ = corpus
    kinds = {style: gather(ld, f"{style}/small_cosine-healthy-s0", Config()).kind for style in lm.STYLES}
    assert kinds == {"megatron": "lm_pretrain", "lightning": "lm_pretrain", "hf": "finetune"}


def test_healthy_training_gives_no_warning(corpus):
    ld, ms = corpus
    rep = diagnose(ld)
    for style in lm.STYLES:
        run = f"{style}/small_cosine-healthy-s0"
        lab = lm.label(ms["healthy"], style)
        severe = [f for f in rep.findings if f.run == run and f.severity in SEVERE]
        if lab["healthy"]:
            assert not severe, [(f.rule, f.message) for f in severe]
        else:  # the machine measurably slowed the run down (another job): only what was measured
            assert all(f.rule in lab["allow"] for f in severe), ([(f.rule, f.message) for f in severe], lab)


def test_broken_loss_scale_is_found_at_its_onset(corpus):
    ld, ms = corpus
    lab = lm.label(ms["fp16_broken"], "megatron")
    exp = [e for e in lab["expect"] if e["rule"] == "lm_loss_scale"]
    assert exp and min(v for v in ms["fp16_broken"]["scale"]) == 1.0
    found = [f for f in diagnose(ld).findings if f.run == "megatron/small_cosine-fp16_broken-s0"]
    hit = [f for f in found if _hit(f, exp[0])]
    assert hit and hit[0].severity == "error", [(f.rule, f.step, f.message) for f in found]
    assert not [f for f in found if f.rule in ("divergence", "oscillation", "lm_divergence")]
