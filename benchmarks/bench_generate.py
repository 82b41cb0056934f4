"""Generation speed: lensteer.generate vs the Bridge's own generate vs Hugging Face generate.

SmolLM2-135M-Instruct, 48 greedy new tokens, batch 1 and batch 8, the three paths interleaved
in one run, median of --reps runs each. Prints ratios of wall time and of process CPU time
(this machine is shared, so only ratios measured in one run mean anything; with one thread,
CPU time is the steadier measure when other processes compete for the cores).

    python benchmarks/bench_generate.py [--reps 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import lensteer  # noqa: E402
from lensteer.generation import left_pad  # noqa: E402

PROMPTS = [
    "Write a long story about a dragon who learns to bake bread.",
    "Explain in detail how a bicycle works.",
    "Describe the water cycle step by step.",
    "List twenty animals and one fact about each.",
    "Tell me about the history of the printing press.",
    "Write a poem about the sea, then explain it.",
    "How do airplanes fly? Explain carefully.",
    "Give me a detailed recipe for tomato soup.",
]
NEW_TOKENS = 48


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM

    model = lensteer.load_model("smollm2-135m-instruct")
    hf = AutoModelForCausalLM.from_pretrained(lensteer.model_info(model).path, dtype=torch.float32)
    hf.eval()
    tok = model.tokenizer
    never = -1  # no early stop: every path generates exactly NEW_TOKENS tokens

    def inputs(batch):
        rows = [lensteer.format_chat(tok, p).input_ids for p in PROMPTS[:batch]]
        return left_pad(rows, tok.pad_token_id)

    def run_lensteer(batch):
        # stop ids patched out so that all paths do the same work
        gens = lensteer.generate(model, PROMPTS[:batch], greedy=True, max_new_tokens=NEW_TOKENS,
                                 batch_size=batch, progress=False, path="tl")  # vs bridge.generate
        return sum(len(g.response_ids) for g in gens)

    def run_bridge(batch):
        tokens, mask = inputs(batch)
        with torch.no_grad():
            out = model.generate(tokens, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 stop_at_eos=True, eos_token_id=[never], verbose=False, return_type="tokens")
        return (out.shape[1] - tokens.shape[1]) * batch

    def run_hf(batch):
        tokens, mask = inputs(batch)
        with torch.no_grad():
            out = hf.generate(input_ids=tokens, attention_mask=mask, max_new_tokens=NEW_TOKENS,
                              min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)
        return (out.shape[1] - tokens.shape[1]) * batch

    import lensteer.generation.core as generation  # generate reads _stop_ids from here

    original_stop_ids = generation._stop_ids
    generation._stop_ids = lambda m: [never]  # same token count on every path
    try:
        paths = {"lensteer.generate": run_lensteer, "bridge.generate": run_bridge, "hf.generate": run_hf}
        results: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        for batch in (1, 8):
            for name, fn in paths.items():  # warm-up
                fn(batch)
            for _ in range(args.reps):
                for name, fn in paths.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    tokens = fn(batch)
                    results.setdefault((name, batch), []).append(time.perf_counter() - start)
                    cpu.setdefault((name, batch), []).append(time.process_time() - start_cpu)
                    assert tokens == NEW_TOKENS * batch, (name, tokens)
    finally:
        generation._stop_ids = original_stop_ids

    print(f"SmolLM2-135M-Instruct, {NEW_TOKENS} greedy tokens, threads={args.threads}, "
          f"median of {args.reps}")
    for label, table in (("wall", results), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in table.items()}
        for batch in (1, 8):
            print(f"[{label}] batch {batch}: " + ", ".join(f"{n} {med[(n, batch)]:.2f}s" for n in paths))
            for a, b in (("lensteer.generate", "hf.generate"), ("lensteer.generate", "bridge.generate"),
                         ("bridge.generate", "hf.generate")):
                print(f"  {a} / {b} = {med[(a, batch)] / med[(b, batch)]:.3f}x")
        speedup = (8 / med[("lensteer.generate", 8)]) / (1 / med[("lensteer.generate", 1)])
        print(f"[{label}] batching: batch-8 / batch-1 throughput (lensteer.generate) = {speedup:.2f}x")


if __name__ == "__main__":
    main()
