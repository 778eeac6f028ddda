"""A corpus of real reinforcement-learning trainings (Stable-Baselines3 on gymnasium's CartPole-v1,
which needs no download) to measure the RL diagnostics on, in the held-out-family evaluation of
demo/diagnostics_families.py (issue 19).

    python demo/diagnostics_rl.py OUTDIR [--families ppo,a2c] [--scenarios healthy,lr_high]
                                          [--seeds 0,1,2] [--jobs 2] [--quick]

    from demo.diagnostics_rl import make, read_labels
    labels = make("/tmp/rl_corpus", jobs=2)   # {run: label}; also OUTDIR/labels.json

Families (algorithms and configurations; SB3 logs through its own TensorBoard output format, each
run written straight into OUTDIR/<family>-<scenario>-s<seed>):

  ppo        PPO, 1 env, n_steps 512, batch 64, 5 epochs, lr 3e-4, net 64-64, 20k steps
  ppo_small  PPO, 1 env, n_steps 256, batch 32, 4 epochs, lr 1e-3, net 32-32, 20k steps
  a2c        A2C, 4 envs, n_steps 5, lr 7e-4, net 64-64, logged every 10 updates, 30k steps
  dqn        DQN (rl-baselines3-zoo's CartPole settings: lr 2.3e-3, batch 64, train every 256 steps
             with 128 gradient steps, target update every 10, exploration over 16%), 20k steps

Scenarios: healthy (the settings above), healthy_lr_half (learning rate / 2), healthy_batch (PPO: twice
the rollout; A2C: 8 envs; DQN: batch 128); broken: lr_high (learning rate x100, DQN x30),
ent_neg (the entropy coefficient's sign flipped, -1.0, with the learning rate x10: the policy is
pushed to be deterministic; PPO and A2C only), reward_x1000 (a gymnasium TransformReward wrapper
multiplying every reward by 1000 outside the Monitor, as a reward-scaling bug does: the agent learns
from the scaled rewards, the logged return is the task's own).

Labels follow what each run measurably did, not its scenario: a callback records every episode (its
end step and return, as the Monitor reports it) and, for PPO and A2C, at the end of each rollout the
policy's mean entropy on the rollout's observations, the KL divergence between the policy before and
after the update (on the same observations) and the explained variance of the value predictions.
From these, label() tells (on the 100-episode mean SB3 logs as rollout/ep_rew_mean) whether the
return improved, collapsed after a peak or never improved, whether the entropy collapsed before the
return made its progress, whether the policy moved by more than the PPO range per update, and whether
the value function explained nothing for long; each is an expectation with its onset. What the logs
cannot show is allowed, not expected: an entropy that fell before SB3's first train/ record, an
explained variance near 0 while the return keeps its rise (the rule says that at info). A return
that did not end up improved may be found as either no improvement or a collapse after a small
early bump (alternatives). A run is healthy when its scenario is healthy and nothing measured
shows a problem. The thresholds of the rules were chosen on the ppo and dqn families (TUNE_FAMILIES);
ppo_small and a2c are held out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))

from demo.diagnostics_families import _clean  # noqa: E402 (JSON-safe measurements: the families corpus's)

LABELS_FILE = "labels.json"
MEASURED_DIR = ".measured"
FAMILIES = ("ppo", "ppo_small", "a2c", "dqn")
TUNE_FAMILIES = ("ppo", "dqn")
HELD_OUT_FAMILIES = ("ppo_small", "a2c")
HEALTHY = ("healthy", "healthy_lr_half", "healthy_batch")
BROKEN = ("lr_high", "ent_neg", "reward_x1000")
SMOKE_SCENARIOS = ("healthy", "lr_high")  # bench_diagnostics.py --smoke: one family, these, one seed
WINDOW = 100  # SB3's stats_window_size: rollout/ep_rew_mean is the mean of the last 100 episodes


def scenarios_of(family):
    return HEALTHY + tuple(s for s in BROKEN if not (family == "dqn" and s == "ent_neg"))


def settings(family, scenario, quick=False):
    """(algorithm, constructor keyword arguments, n_envs, total steps, learn() keyword arguments)."""
    if family == "ppo":
        algo, kw, n_envs, steps = "ppo", dict(n_steps=512, batch_size=64, n_epochs=5, learning_rate=3e-4), 1, 20000
    elif family == "ppo_small":
        algo, kw, n_envs, steps = "ppo", dict(n_steps=256, batch_size=32, n_epochs=4, learning_rate=1e-3,
                                              policy_kwargs=dict(net_arch=[32, 32])), 1, 20000
    elif family == "a2c":
        algo, kw, n_envs, steps = "a2c", dict(n_steps=5, learning_rate=7e-4), 4, 30000
    elif family == "dqn":
        algo, kw, n_envs, steps = "dqn", dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100000,
                                              learning_starts=1000, gamma=0.99, target_update_interval=10,
                                              train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                                              exploration_final_eps=0.04,
                                              policy_kwargs=dict(net_arch=[256, 256])), 1, 20000
    else:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
    learn = {"log_interval": 10} if algo == "a2c" else ({"log_interval": 4} if algo == "dqn" else {})
    if scenario == "healthy_lr_half":
        kw["learning_rate"] /= 2
    elif scenario == "healthy_batch":
        if algo == "ppo":
            kw["n_steps"] *= 2
        elif algo == "a2c":
            n_envs = 8
        else:
            kw["batch_size"] = 128
    elif scenario == "lr_high":
        kw["learning_rate"] *= 30 if algo == "dqn" else 100
    elif scenario == "ent_neg":  # the entropy term's sign flipped and the policy's rate far too high
        kw["ent_coef"] = -1.0
        kw["learning_rate"] *= 10
    if quick:
        steps = steps // 3
    return algo, kw, n_envs, steps, learn


def train(outdir, family, scenario, seed, quick=False) -> dict:
    """Trains one run into OUTDIR/<family>-<scenario>-s<seed> and returns its measurements."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C, DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    torch.set_num_threads(1)
    algo, kw, n_envs, steps, learn = settings(family, scenario, quick)
    run = f"{family}-{scenario}-s{seed}"
    scale = 1000.0 if scenario == "reward_x1000" else 1.0

    def wrap(env):
        return gym.wrappers.TransformReward(env, lambda r: scale * r) if scale != 1.0 else env

    # the scaling wraps the Monitor (make_vec_env's wrapper_class): the agent sees the scaled rewards,
    # the Monitor (and SB3's rollout/ep_rew_mean) the task's own
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed,
                       env_kwargs=None, wrapper_class=None if scale == 1.0 else wrap)
    cls = {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]
    model = cls("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **kw)
    path = os.path.join(outdir, run)
    model.set_logger(configure(path, ["tensorboard"]))
    m = {"family": family, "scenario": scenario, "seed": seed, "algo": algo, "steps": steps,
         "episodes": [], "updates": []}

    class Measure(BaseCallback):
        obs = dist = None

        def _on_step(self):
            for info in self.locals.get("infos", ()):
                ep = info.get("episode")
                if ep:
                    m["episodes"].append([int(self.num_timesteps), float(ep["r"]), int(ep["l"])])
            return True

        def _probs(self, obs):
            with torch.no_grad():
                d = self.model.policy.get_distribution(obs)
                return d.distribution.probs.clone()

        def _on_rollout_start(self):
            if self.obs is not None:  # the update since the last rollout: KL(before || after)
                p_new = self._probs(self.obs)
                kl = torch.sum(self.dist * (torch.log(self.dist + 1e-12) - torch.log(p_new + 1e-12)), -1)
                m["updates"][-1]["kl"] = float(kl.mean())

        def _on_rollout_end(self):
            if algo == "dqn":
                return
            buf = self.model.rollout_buffer
            obs = torch.as_tensor(buf.observations.reshape(-1, buf.observations.shape[-1]))
            p = self._probs(obs)
            ent = float(-(p * torch.log(p + 1e-12)).sum(-1).mean())
            v, r = buf.values.flatten(), buf.returns.flatten()
            var = float(np.var(r))
            ev = float("nan") if var == 0 else float(1 - np.var(r - v) / var)
            m["updates"].append({"step": int(self.num_timesteps), "entropy": ent, "ev": ev, "kl": None})
            self.obs, self.dist = obs, p

    t0 = time.perf_counter()
    model.learn(steps, callback=Measure(), **learn)
    model.logger.close()
    env.close()
    m["seconds"] = time.perf_counter() - t0
    return m


# ------------------------------------------------------------------ labels

def logged_return(m):
    """(step, mean of the last 100 episode returns) at each episode's end, as SB3's ep_rew_mean."""
    ep = np.asarray(m["episodes"], float).reshape(-1, 3)
    if not len(ep):
        return np.zeros(0), np.zeros(0)
    r = ep[:, 1]
    c = np.concatenate([[0.0], np.cumsum(r)])
    i = np.arange(1, len(r) + 1)
    lo = np.maximum(0, i - WINDOW)
    return ep[:, 0], (c[i] - c[lo]) / (i - lo)


def measure(m) -> dict:
    """The figures the label is made from."""
    s, rm = logged_return(m)
    f = {"episodes": len(s), "steps": m["steps"]}
    if len(rm) < 10:
        return f
    # the curve's start: its first point with 10 episodes in it; peak and end
    k0 = min(9, len(rm) - 1)
    start, peak_i = float(rm[k0]), k0 + int(np.argmax(rm[k0:]))
    peak, end = float(rm[peak_i]), float(rm[-1])
    f.update(ret_start=start, ret_peak=peak, ret_peak_step=int(s[peak_i]), ret_end=end)
    # the true CartPole return (the episode length) tells a scaled reward from a real one
    ep = np.asarray(m["episodes"], float)
    f["len_first"] = float(np.mean(ep[:20, 2]))
    f["len_last"] = float(np.mean(ep[-20:, 2]))
    up = m["updates"]
    if up:
        st = np.array([u["step"] for u in up], float)
        ent = np.array([u["entropy"] for u in up], float)
        kl = np.array([np.nan if u["kl"] is None else u["kl"] for u in up], float)
        ev = np.array([u["ev"] for u in up], float)
        f.update(ent_start=float(ent[0]), ent_end=float(ent[-1]), ent_min=float(np.min(ent)),
                 kl_median=float(np.nanmedian(kl)) if np.isfinite(kl).any() else None,
                 ev_median_late=float(np.nanmedian(ev[len(ev) // 4:])) if np.isfinite(ev).any() else None)
    return f


# what the label measures, in CartPole's terms (a random policy's return is about 22, a solved one 500)
IMPROVED = 0.5       # the 100-episode mean rose above its start by at least this share of the start
COLLAPSED = 0.5      # ... and fell back by at least this share of that rise by the end
ENT_COLLAPSED = 0.1  # the policy's entropy fell below this share of its start ...
ENT_EARLY = 0.75     # ... while the return had made less than this share of its rise to the peak
KL_HIGH = 0.05       # the KL between the policy before and after an update above this ...
KL_SHARE = 0.25      # ... in at least this share of the updates
EV_LOW = 0.0         # the explained variance at or below this over the last 3/4 of the run


def first_log_step(m):
    """The step of SB3's first train/ record for the run's settings."""
    algo, kw, n_envs, _, learn = settings(m["family"], m["scenario"])
    if algo == "dqn":
        return 0
    return kw["n_steps"] * n_envs * (learn.get("log_interval", 1) if algo == "a2c" else 1)


def label(m, figures=None) -> dict:
    f = figures or measure(m)
    fam, scen = m["family"], m["scenario"]
    expect, allow, borderline = [], set(), []
    steps = m["steps"]
    tol = int(0.15 * steps)

    def exp(rule, onset=None, tolerance=tol, alternatives=()):
        expect.append({"rule": rule, "onset": onset, "tolerance": tolerance})
        if alternatives:  # findings of these rules match too
            expect[-1]["alternatives"] = list(alternatives)
            allow.update(alternatives)

    learning = False  # the return improved and kept most of it: a critic that explains little only lags

    if "ret_start" in f:
        s, rm = logged_return(m)
        k0 = min(9, len(rm) - 1)
        start, peak, end = f["ret_start"], f["ret_peak"], f["ret_end"]
        rise = peak - start
        need = IMPROVED * abs(start)
        learning = rise >= need and end >= start + 0.5 * rise
        # a return that did not end up improved: a transient early bump in the logged mean can make it
        # read as a collapse after a peak, and a collapse after a small rise as no improvement
        if rise < need:
            exp("rl_no_improvement", None, alternatives=("rl_return_collapse",))
            if rise > 0.6 * need:
                borderline.append("improved a little")
        elif peak - end >= COLLAPSED * rise:
            # onset: the last point before the final fall where the curve was within a fifth of the
            # rise from its peak
            pk = k0 + int(np.argmax(rm[k0:]))
            near = np.flatnonzero(rm[: pk + 1] >= peak - 0.2 * rise)
            exp("rl_return_collapse", int(s[near[-1]]) if len(near) else int(s[pk]),
                alternatives=("rl_no_improvement",) if rise < 2 * need else ())
        elif peak - end >= 0.3 * rise:
            borderline.append("fell back part of the way")
            allow.add("rl_return_collapse")
        _ = k0
    up = m["updates"]
    if up:
        st = np.array([u["step"] for u in up])
        ent = np.array([u["entropy"] for u in up], float)
        low = np.flatnonzero(ent < ENT_COLLAPSED * ent[0])
        # SB3 logs train/ after the first update (PPO) or every 10 updates (A2C here): a fall mostly
        # done by then is not in the logs (they start low), so it is allowed, not expected
        first_log = m.get("first_log") or first_log_step(m)
        logged = ent[st >= first_log]
        unseen = len(logged) and logged[0] < 0.5 * ent[0]
        if unseen and len(low):
            allow.add("rl_entropy_collapse")
            borderline.append("entropy fell before the first logged update")
        elif len(low) and np.all(ent[low[0]:] < 2 * ENT_COLLAPSED * ent[0]):
            s, rm = logged_return(m)
            at = rm[np.searchsorted(s, st[low[0]]) - 1] if len(s) and s[0] <= st[low[0]] else \
                (rm[0] if len(rm) else 0.0)
            rise = (f.get("ret_peak", 0) - f.get("ret_start", 0))
            progress = (at - f.get("ret_start", 0)) / rise if rise > IMPROVED * abs(f.get("ret_start", 1)) else 0.0
            if progress < ENT_EARLY:
                exp("rl_entropy_collapse", int(st[low[0]]))
            else:
                allow.add("rl_entropy_collapse")
        elif np.min(ent) < 2 * ENT_COLLAPSED * ent[0]:
            allow.add("rl_entropy_collapse")
        kl = np.array([np.nan if u["kl"] is None else u["kl"] for u in up], float)
        if m["algo"] == "ppo" and np.isfinite(kl).sum() >= 5:
            share = float(np.mean(kl[np.isfinite(kl)] > KL_HIGH))
            if share >= KL_SHARE:
                # onset: the first of 3 updates in a row over the range (a single large update is no start)
                over = kl > KL_HIGH
                run3 = np.flatnonzero(over[:-2] & over[1:-1] & over[2:])
                first = int(run3[0]) if len(run3) else int(np.argmax(over))
                exp("rl_ppo_update", int(st[first]), tolerance=int(0.25 * steps))
            elif share >= KL_SHARE / 3:
                borderline.append("policy moves near the PPO range")
                allow.add("rl_ppo_update")
        ev = np.array([u["ev"] for u in up], float)
        late = ev[len(ev) // 4:]
        late = late[np.isfinite(late)]
        if len(late) >= 5:
            if np.median(late) <= EV_LOW and learning:
                allow.add("rl_explained_variance")  # the rule says it at info only
            elif np.median(late) <= EV_LOW:
                exp("rl_explained_variance", int(st[len(ev) // 4]), tolerance=int(0.3 * steps))
            elif np.median(late) <= EV_LOW + 0.2:
                borderline.append("explained variance near 0")
                allow.add("rl_explained_variance")
    healthy = scen.startswith("healthy") and not expect
    return {"family": fam, "scenario": scen, "seed": m["seed"], "style": "sb3", "kind": "rl",
            "healthy": healthy, "ambiguous": healthy and bool(borderline) or (not scen.startswith("healthy")
                                                                               and not expect),
            "borderline": borderline, "expect": expect, "allow": sorted(allow),
            "held_out": fam in HELD_OUT_FAMILIES, "figures": f}


# ------------------------------------------------------------------ the corpus



def _job(args):
    outdir, fam, scen, seed, quick = args
    import shutil

    shutil.rmtree(os.path.join(outdir, f"{fam}-{scen}-s{seed}"), ignore_errors=True)  # no second event file
    m = train(outdir, fam, scen, seed, quick)
    d = os.path.join(outdir, MEASURED_DIR)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{fam}-{scen}-s{seed}.json"), "w") as fh:
        json.dump(_clean(m), fh)
    return f"{fam}-{scen}-s{seed}", m["seconds"]


def load_measured(outdir, run) -> dict:
    with open(os.path.join(outdir, MEASURED_DIR, run + ".json")) as fh:
        m = json.load(fh)
    for u in m["updates"]:
        for k in ("ev", "entropy"):
            if u[k] is None:
                u[k] = math.nan
    return m


def relabel(outdir) -> dict:
    """The labels of OUTDIR computed again from its saved measurements."""
    d = os.path.join(outdir, MEASURED_DIR)
    labels = {}
    for name in sorted(os.listdir(d)):
        if name.endswith(".json"):
            run = name[:-5]
            labels[run] = label(load_measured(outdir, run))
    with open(os.path.join(outdir, LABELS_FILE) + ".tmp", "w") as fh:
        json.dump(_clean(labels), fh, indent=1, sort_keys=True)
    os.replace(os.path.join(outdir, LABELS_FILE) + ".tmp", os.path.join(outdir, LABELS_FILE))
    return labels


def make(outdir, seeds=(0, 1, 2), jobs=1, families=None, scenarios=None, quick=False, progress=None,
         resume=False) -> dict:
    """Trains every (family, scenario, seed) asked for into OUTDIR and returns {run: label} (also
    written to OUTDIR/labels.json). quick: a third of the steps (for a smoke test; its labels say
    what those shorter runs did). resume: keep the runs an earlier call measured (OUTDIR/.measured)."""
    fams = list(FAMILIES) if families is None else list(families)
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise ValueError(f"unknown families {bad}; known: {list(FAMILIES)}")
    os.makedirs(outdir, exist_ok=True)
    work = [(outdir, f, s, int(seed), quick) for f in fams for s in scenarios_of(f)
            if scenarios is None or s in scenarios for seed in seeds]
    done = {f"{f}-{s}-s{seed}" for _, f, s, seed, _ in work}
    if resume:
        work = [w for w in work if not os.path.exists(os.path.join(outdir, MEASURED_DIR, f"{w[1]}-{w[2]}-s{w[3]}.json"))]
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            for run, dt in pool.imap_unordered(_job, work):
                if progress:
                    progress(run, dt)
    else:
        for w in work:
            run, dt = _job(w)
            if progress:
                progress(run, dt)
    labels = {k: v for k, v in relabel(outdir).items() if k in done}
    return labels


def read_labels(outdir) -> dict:
    with open(os.path.join(outdir, LABELS_FILE)) as fh:
        return json.load(fh)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--families")
    ap.add_argument("--scenarios")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the runs an earlier call measured")
    ap.add_argument("--relabel", action="store_true", help="label again from the saved measurements")
    ap.add_argument("--evaluate", action="store_true", help="diagnose and print recall and false alarms")
    a = ap.parse_args(argv)
    if a.relabel:
        labels = relabel(a.outdir)
    else:
        t0 = time.perf_counter()
        labels = make(a.outdir, [int(s) for s in a.seeds.split(",")], a.jobs,
                      a.families.split(",") if a.families else None,
                      a.scenarios.split(",") if a.scenarios else None, a.quick, resume=a.resume,
                      progress=lambda run, dt: print(f"{run}: {dt:.1f}s", flush=True))
        print(f"{len(labels)} runs in {time.perf_counter() - t0:.0f}s")
    if a.evaluate:
        from demo.diagnostics_families import evaluate, summarise

        res = evaluate(a.outdir, labels)
        for name, grp in (("held-out", lambda lab: lab["held_out"]), ("family", lambda lab: lab["family"])):
            for row in summarise(res, grp):
                print(name, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
