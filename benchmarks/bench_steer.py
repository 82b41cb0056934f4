"""Steering overhead on SmolLM2-135M: 48 greedy tokens, batch 1 and 8, interleaved, medians.

    .venv/bin/python benchmarks/bench_steer.py --reps 5

Timings are CPU seconds of this process (``time.process_time``) — on a shared machine far
steadier than wall time, which is recorded too (``--json``). Run with one torch thread.

Configurations (each run generates exactly 48 tokens per row; end-of-turn is suppressed):
  hf          Hugging Face ``generate`` on a plain model, no steering (the reference)
  plain-tl    ``lensteer.generate`` without steering (TransformerLens Bridge path)
  plain-fast  ``lensteer.generate(path="fast")`` without steering
  sttp        StTP on one layer, all positions, lensteer's default path (auto → fast)
  sttp-tel    the same with telemetry on
  sttp-4      StTP on four layers
  sttp-tl     StTP on one layer forced onto the Bridge path
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("LENSTEER_BENCH_THREADS", "1")))

import lensteer  # noqa: E402
from lensteer.chat import as_messages, format_chat  # noqa: E402
from lensteer.directions import TraitDirection  # noqa: E402
from lensteer.generation import core as gen_module  # noqa: E402
from lensteer.generation import left_pad  # noqa: E402

PROMPTS = [
    "Write a long story about a dragon who learns to bake bread.",
    "Explain in detail how photosynthesis works.",
    "Describe the history of the Roman Empire.",
    "Give me ten tips for learning a new language, with explanations.",
    "What are the main causes of climate change? Explain each one.",
    "Write a poem about the sea, then explain its imagery.",
    "How does a computer processor execute instructions?",
    "Tell me about the life of a honey bee from egg to adult.",
]
NEW = 48


def micro(model, hf, steerer, chats, batches) -> None:
    """The hook's own cost per decoding step (CPU time), next to one decoding step of the model.

    Noise on a shared machine hides a 1 % difference between whole generations; this measures
    what steering adds directly: one call of the StTP hook on a ``[batch, 1, d_model]`` tensor,
    with and without telemetry, against a cached one-token forward of the Hugging Face model.
    """
    from transformers import DynamicCache

    from lensteer.steering.steerers import SteerHook
    from lensteer.steering.telemetry import Telemetry

    tok = model.tokenizer
    rule = steerer.rules[0]
    print("\nhook cost per decoding step (CPU µs, median of 7 × 200 calls):")
    for b in batches:
        tokens, mask = left_pad(sorted(chats[:b], key=len), tok.pad_token_id)
        with torch.no_grad():
            cache = DynamicCache(config=hf.config)
            out = hf(input_ids=tokens, attention_mask=mask, past_key_values=cache, use_cache=True)
            nxt = out.logits[:, -1:].argmax(-1)
            full = torch.cat([mask, mask.new_ones(b, 1)], 1)
            steps = []
            for _ in range(7):
                c = DynamicCache(config=hf.config)
                hf(input_ids=tokens, attention_mask=mask, past_key_values=c, use_cache=True)
                t = time.process_time()
                hf(input_ids=nxt, attention_mask=full, past_key_values=c, use_cache=True)
                steps.append(time.process_time() - t)
        step = statistics.median(steps) * 1e6
        h = torch.randn(b, 1, 576)
        for label, tel in (("StTP hook", None), ("StTP hook + telemetry", Telemetry())):
            hook = SteerHook(steerer, rule, tel)
            hook.on_tensor(torch.randn(b, 30, 576))  # a prefill first, as in generation
            runs = []
            for _ in range(7):
                t = time.process_time()
                for _ in range(200):
                    hook.on_tensor(h)
                runs.append((time.process_time() - t) / 200 * 1e6)
            cost = statistics.median(runs)
            print(f"  batch {b}: {label:<22} {cost:7.1f} µs = {cost / step:6.2%} of a decoding step "
                  f"({step / 1e3:.1f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--layer", type=int, default=10)
    parser.add_argument("--json", default=None, help="write the raw timings here")
    parser.add_argument("--micro-only", action="store_true",
                        help="only time the hook body against one decoding step")
    args = parser.parse_args()

    model = lensteer.load_model("smollm2-135m-instruct")
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(lensteer.model_info(model).path, dtype=torch.float32).eval()
    info = lensteer.model_info(model).to_dict()

    def direction(layer: int, seed: int) -> TraitDirection:
        g = torch.Generator().manual_seed(seed)
        # Statistics chosen so that the gate fires on about half of the tokens.
        return TraitDirection(v_hat=torch.randn(576, generator=g), boundary=0.0, mu_pos=0.5,
                              sigma_pos=0.1, mu_neg=-0.5, sigma_neg=0.1, layer=layer,
                              hook=f"blocks.{layer}.hook_resid_post", model=info)

    one = lensteer.StTP(direction(args.layer, 0), alpha=1)
    four = lensteer.StTP([direction(args.layer + k, k) for k in range(4)], alpha=1)

    # Exactly NEW tokens per row everywhere: no stop token can match.
    gen_module._stop_ids = lambda m: [10**9]

    tok = model.tokenizer
    chats_all = [format_chat(tok, as_messages(p)).input_ids for p in PROMPTS]

    def run_hf(chats):
        chats = sorted(chats, key=len)
        tokens, mask = left_pad(chats, tok.pad_token_id)
        with torch.no_grad():
            out = hf.generate(tokens, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW,
                              do_sample=False, pad_token_id=tok.pad_token_id)
        assert out.shape[1] - tokens.shape[1] == NEW

    def run_lensteer(prompts, steerers=None, path="auto", telemetry=False):
        def go():
            gens = lensteer.generate(model, prompts, greedy=True, max_new_tokens=NEW,
                                     batch_size=len(prompts), path=path)
            assert all(len(g.response_ids) == NEW for g in gens)

        if steerers is None:
            go()
        else:
            with lensteer.steer(model, steerers, telemetry=telemetry):
                go()

    micro(model, hf, one, chats_all, [int(x) for x in args.batches.split(",")])
    if args.micro_only:
        return 0
    results: dict[str, dict[str, list[float]]] = {}
    walls: dict[str, dict[str, list[float]]] = {}
    for b in [int(x) for x in args.batches.split(",")]:
        prompts = PROMPTS[:b]
        chats = chats_all[:b]
        configs = {
            "hf": lambda c=chats: run_hf(c),
            "plain-tl": lambda p=prompts: run_lensteer(p, path="tl"),
            "plain-fast": lambda p=prompts: run_lensteer(p, path="fast"),
            "sttp": lambda p=prompts: run_lensteer(p, one),
            "sttp-tel": lambda p=prompts: run_lensteer(p, one, telemetry=True),
            "sttp-4": lambda p=prompts: run_lensteer(p, four),
            "sttp-tl": lambda p=prompts: run_lensteer(p, one, path="tl"),
        }
        for fn in configs.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {k: [] for k in configs}
        wall: dict[str, list[float]] = {k: [] for k in configs}
        for rep in range(args.reps):  # interleaved
            for name, fn in configs.items():
                t, w = time.process_time(), time.perf_counter()
                fn()
                times[name].append(time.process_time() - t)
                wall[name].append(time.perf_counter() - w)
            print(f"batch {b} rep {rep + 1}/{args.reps}: "
                  + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), file=sys.stderr)
        results[f"batch{b}"] = times
        walls[f"batch{b}"] = wall

    print(f"\nSmolLM2-135M, {NEW} greedy tokens, torch threads {torch.get_num_threads()}, "
          f"median of {args.reps} interleaved runs (CPU seconds; ratios of medians)")
    for key, times in results.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{key}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
        print(f"  StTP 1 layer (default path) / HF generate     : {med['sttp'] / med['hf']:.3f}  (goal <= 1.05)")
        print(f"  StTP 1 layer / unsteered, same (fast) path   : {med['sttp'] / med['plain-fast']:.3f}  (goal <= 1.02)")
        print(f"  StTP + telemetry / unsteered, same path      : {med['sttp-tel'] / med['plain-fast']:.3f}  (goal <= 1.10)")
        print(f"  StTP + telemetry / HF generate               : {med['sttp-tel'] / med['hf']:.3f}")
        print(f"  StTP 4 layers / unsteered, same path         : {med['sttp-4'] / med['plain-fast']:.3f}  (goal <= 1.05)")
        print(f"  StTP 4 layers / HF generate                  : {med['sttp-4'] / med['hf']:.3f}")
        print(f"  unsteered fast path / HF generate            : {med['plain-fast'] / med['hf']:.3f}")
        print(f"  unsteered Bridge path / HF generate          : {med['plain-tl'] / med['hf']:.3f}")
        print(f"  StTP on the Bridge path / unsteered Bridge   : {med['sttp-tl'] / med['plain-tl']:.3f}")
        wmed = {k: statistics.median(v) for k, v in walls[key].items()}
        print("  (wall-clock medians: " + ", ".join(f"{k} {v:.2f}" for k, v in wmed.items()) + ")")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": results, "wall": walls}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
