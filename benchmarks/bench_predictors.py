"""Benchmark: what the teacher-forced effect costs in ``locate``, and per-row steering vs one
steered pass per (layer, rule).

On the organism (honesty, all 6 layers, its full contrastive set, 48 sampled tokens), interleaved
over ``--repeats``, CPU time of this one-thread process, medians:

- ``locate`` on a given contrastive set with ``tf_effect=False`` vs ``True`` (the predictor's
  share of a sweep once the responses exist; generation is left out, it is the same for both);
- :func:`lensteer.locate.predictors.teacher_forced_effect` on the 32 pairs ``locate`` scores
  by default (every (layer, rule) and the unsteered rows in one teacher-forced pass over the
  rows, steered per row) vs a loop that
  scores the same rows once per condition under ``steer(model, steerer)``, which is what the
  predictor costs without per-row steering.

    python benchmarks/bench_predictors.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

import lensteer  # noqa: E402
from lensteer.generation.forced import continuation_logprobs  # noqa: E402
from lensteer.locate import build_contrastive  # noqa: E402
from lensteer.locate.predictors import (  # noqa: E402
    contrastive_pairs,
    small_push,
    spread,
    teacher_forced_effect,
)
from lensteer.steering import make_steerer  # noqa: E402


def one_condition_at_a_time(model, samples, directions, batch_size=16):
    pairs = contrastive_pairs(samples)
    prompts, conts = [], []
    for a, m in pairs:
        prompt = samples[m].input_ids[:samples[m].span[0]]
        for k in (a, m):
            prompts.append(prompt)
            conts.append(samples[k].input_ids[slice(*samples[k].span)])
    continuation_logprobs(model, prompts, conts, batch_size=batch_size)
    for direction in directions.values():
        for rule, alpha in small_push().items():
            with lensteer.steer(model, make_steerer(rule, direction, alpha)):
                continuation_logprobs(model, prompts, conts, batch_size=batch_size)


def cpu(fn):
    t = time.process_time()
    fn()
    return time.process_time() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = lensteer.load_model("organism")
    trait = lensteer.load_trait("honesty", model=model)
    samples = build_contrastive(model, trait, progress=False)
    kw = dict(samples=samples, neutral=False, per_token=False, progress=False)
    dirs = lensteer.locate(model, trait, tf_effect=False, **kw).directions
    kept = [samples[k] for a, m in spread(contrastive_pairs(samples), 32) for k in (a, m)]
    runs = {k: [] for k in ("locate, no tf_effect", "locate, tf_effect", "tf_effect, per-row",
                            "tf_effect, a pass per condition")}
    for _ in range(args.repeats):
        runs["locate, no tf_effect"].append(cpu(lambda: lensteer.locate(model, trait, tf_effect=False, **kw)))
        runs["locate, tf_effect"].append(cpu(lambda: lensteer.locate(model, trait, tf_effect=True, **kw)))
        runs["tf_effect, per-row"].append(cpu(lambda: teacher_forced_effect(model, kept, dirs, progress=False)))
        runs["tf_effect, a pass per condition"].append(cpu(lambda: one_condition_at_a_time(model, kept, dirs)))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"organism honesty: {len(contrastive_pairs(samples))} pairs (the effect scores "
          f"{len(kept) // 2}), {len(dirs)} layers × "
          f"{len(small_push())} rules + unsteered = {len(dirs) * len(small_push()) + 1} conditions; "
          f"CPU medians of {args.repeats}")
    base = med["locate, no tf_effect"]
    for k in ("locate, no tf_effect", "locate, tf_effect"):
        print(f"{k:<34} {med[k]:7.2f} s  ({med[k] / base:.2f}x locate without it)")
    ref = med["tf_effect, per-row"]
    for k in ("tf_effect, per-row", "tf_effect, a pass per condition"):
        print(f"{k:<34} {med[k]:7.2f} s  ({med[k] / ref:.2f}x per-row)")


if __name__ == "__main__":
    main()
