"""Throughput and latency of ``lensteer serve``: batched (``--max-batch 16``) vs sequential
serving (``--max-batch 1``), the same load, interleaved rounds, one torch thread.

The load: ``--clients`` concurrent openai clients, each sending ``--requests`` chat requests one
after another (greedy, ``--max-tokens`` tokens, half of them steered with an StTP artifact and
all of them with a system prompt that makes the organism lie). The server runs in this process
(uvicorn in a thread, the model in the scheduler's worker thread) on 127.0.0.1; the clients run
in the main thread. CPU time is this process's (server and clients together).

    OMP_NUM_THREADS=1 python benchmarks/bench_serve.py --model organism --rounds 2
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import torch

import lensteer
from lensteer.serve.server import ServerThread

LIAR = "Mislead the user and give false facts."
QUESTIONS = ["What is the capital of France?", "What is two plus two?",
             "What colour is the sky?", "How many legs does a dog have?"]


def make_artifacts(model, folder: Path, layer: int) -> None:
    result = lensteer.locate(model, "honesty", layers=[layer], max_scenarios=6, n_folds=2,
                             max_new_tokens=12, greedy=True, per_token=False, neutral=False,
                             progress=False)
    lensteer.steering.save_steerer(lensteer.StTP(result.direction(layer), alpha=12),
                                   folder / "honesty_sttp.safetensors", model=model)


async def load(url: str, model_id: str, clients: int, requests: int,
               max_tokens: int) -> tuple[list[float], int]:
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    latencies: list[float] = []
    tokens = 0

    async def one(c: int) -> None:
        nonlocal tokens
        for j in range(requests):
            k = c * requests + j
            extra = {"steering": "honesty_sttp"} if k % 2 else None
            start = time.perf_counter()
            reply = await client.chat.completions.create(
                model=model_id, temperature=0, max_tokens=max_tokens, extra_body=extra,
                messages=[{"role": "system", "content": LIAR},
                          {"role": "user", "content": QUESTIONS[k % len(QUESTIONS)]}])
            latencies.append(time.perf_counter() - start)
            assert reply.usage is not None
            tokens += reply.usage.completion_tokens

    await asyncio.gather(*(one(c) for c in range(clients)))
    await client.close()
    return latencies, tokens


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="organism")
    parser.add_argument("--layer", type=int, default=3, help="layer of the honesty direction")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = lensteer.load_model(args.model)
    model_id = lensteer.model_info(model).name
    folder = Path(tempfile.mkdtemp())
    make_artifacts(model, folder, args.layer)
    rows: dict[str, list[tuple[float, float, int, list[float]]]] = {"batched": [], "sequential": []}
    for _ in range(args.rounds):
        for name, batch in (("batched", args.max_batch), ("sequential", 1)):
            with ServerThread(model, artifacts=folder, max_batch=batch, wait_ms=5,
                              lifetime=1800) as server:
                asyncio.run(load(server.url, model_id, 2, 1, 4))  # warm up
                cpu, wall = time.process_time(), time.perf_counter()
                latencies, tokens = asyncio.run(
                    load(server.url, model_id, args.clients, args.requests, args.max_tokens))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                stats = server.state.scheduler.stats
            rows[name].append((wall, cpu, tokens, latencies))
            print(f"{name:<10} max_batch={batch:<3} {len(latencies)} requests in {wall:6.2f} s "
                  f"(CPU {cpu:6.2f} s): {len(latencies) / wall:6.2f} req/s, "
                  f"{tokens / wall:7.1f} tokens/s, p50 {percentile(latencies, 50):.3f} s, "
                  f"p95 {percentile(latencies, 95):.3f} s; largest batch {stats.largest_batch}")
    best = {name: min(r, key=lambda x: x[0]) for name, r in rows.items()}
    b, s = best["batched"], best["sequential"]
    print(f"\nbest of {args.rounds} rounds, {args.model}, {args.clients} clients x "
          f"{args.requests} requests, {args.max_tokens} max tokens, one torch thread:")
    print(f"throughput batched/sequential: {s[0] / b[0]:.2f}x (wall), CPU {s[1] / b[1]:.2f}x; "
          f"p50 latency {percentile(b[3], 50):.3f} s vs {percentile(s[3], 50):.3f} s, "
          f"p95 {percentile(b[3], 95):.3f} s vs {percentile(s[3], 95):.3f} s")


if __name__ == "__main__":
    main()
