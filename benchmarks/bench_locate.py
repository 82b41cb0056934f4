"""Benchmark: pooled activations for every layer in one pass vs plain forward passes.

Pools the response-mean ``resid_post`` of all 30 SmolLM2 layers over 64 chat responses
(``lensteer.collect_activations``) and times it against plain forward passes
(``model(tokens, attention_mask=mask)``) over the same left-padded batches. Runs are
interleaved; the median of ``--repeats`` is reported, with the ratio. A per-layer approach
(one pass per layer) would cost about 30 forward passes.

    .venv/bin/python benchmarks/bench_locate.py [--repeats 5] [--batch-size 8]

With ``--organism`` it also times ``lensteer locate --model organism --trait honesty`` end to
end (generation included) in a subprocess and reports its peak memory.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("LENSTEER_BENCH_THREADS", "1")))

import lensteer  # noqa: E402
from lensteer.activations import collect_activations  # noqa: E402
from lensteer.chat import format_chat  # noqa: E402
from lensteer.generation import left_pad  # noqa: E402

ANSWERS = [
    "The answer is simple: {q} Let me explain it step by step so that it is clear.",
    "Good question! Here is what I know about it, in a few short sentences for you.",
    "I am not completely sure, but I will give you my best and most honest answer now.",
    "Sure. Many people ask this. The short answer comes first, then some more details.",
]


def build_samples(model, n: int) -> tuple[list[list[int]], list[tuple[int, int]]]:
    trait = lensteer.load_trait("honesty")
    prompts = trait.aligned_prompts + trait.malicious_prompts
    rows, spans = [], []
    for i in range(n):
        scenario = trait.scenarios[i % len(trait.scenarios)]
        answer = ANSWERS[i % len(ANSWERS)].format(q=scenario.prompt)
        chat = format_chat(model.tokenizer, [
            {"role": "system", "content": prompts[i % len(prompts)]},
            {"role": "user", "content": scenario.prompt},
            {"role": "assistant", "content": answer},
        ], add_generation_prompt=False)
        rows.append(chat.input_ids)
        spans.append(chat.spans_of("assistant")[-1].span)
    return rows, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--organism", action="store_true", help="also time `lensteer locate` on the organism")
    args = parser.parse_args()

    model = lensteer.load_model(args.model)
    n_layers = int(model.cfg.n_layers)
    rows, spans = build_samples(model, args.n)
    pad = model.tokenizer.pad_token_id or 0
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # what collect_activations does
    batches = [left_pad([rows[i] for i in order[k:k + args.batch_size]], pad)
               for k in range(0, len(rows), args.batch_size)]
    n_tokens = sum(len(r) for r in rows)
    print(f"{args.model}: {n_layers} layers, {args.n} responses, {n_tokens} tokens, "
          f"batch {args.batch_size}, {torch.get_num_threads()} thread(s)")

    def plain():
        with torch.no_grad():
            for tokens, mask in batches:
                model(tokens, attention_mask=mask)

    def pooled():
        collect_activations(model, rows, spans, batch_size=args.batch_size, progress=False)

    def pooled_full():
        collect_activations(model, rows, spans, batch_size=args.batch_size, progress=False,
                            stop_early=False)

    runs = {"plain forward": plain, f"pooled, {n_layers} layers": pooled,
            f"pooled, {n_layers} layers, no early stop": pooled_full}
    plain()  # warm up
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():  # interleaved
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    # CPU time of this (single-threaded) process is the robust number on a shared machine;
    # wall time is printed too.
    base, base_wall = statistics.median(cpu["plain forward"]), statistics.median(wall["plain forward"])
    for name in runs:
        med, med_wall = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"  {name:<34} CPU median {med:7.2f} s ({med / base:.3f}x plain)   "
              f"wall median {med_wall:7.2f} s ({med_wall / base_wall:.3f}x)   "
              f"CPU runs: {', '.join(f'{t:.1f}' for t in cpu[name])}")
    print(f"  per-layer passes would cost about {n_layers}x plain")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process: {rss:.0f} MiB")

    if args.organism:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "lensteer.cli", "locate", "--model", "organism", "--trait",
                   "honesty", "--out", out]
            start = time.perf_counter()
            env = dict(os.environ, OMP_NUM_THREADS="1")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"lensteer locate --model organism --trait honesty: {wall:.1f} s wall, "
                  f"peak RSS {child:.0f} MiB, exit {proc.returncode}")
            if proc.returncode:
                print(proc.stderr[-2000:])
            else:
                print("\n".join(proc.stdout.splitlines()[:8]))


if __name__ == "__main__":
    main()
