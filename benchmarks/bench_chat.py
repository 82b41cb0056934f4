"""What the chat benchmarks cost: answer generation and a local judge, timed per stage.

Generates MT-Bench answers (both turns) for ``--mtbench`` questions and AlpacaEval-style answers
for ``--alpaca`` bundled instructions with one model (unsteered, greedy, ≤ ``--max-new-tokens``
new tokens, batch 8), grades the MT-Bench answers with a local judge (single ratings, ≤
``--judge-max-new-tokens``), and measures the size of every judge prompt the panel would send
(single and pairwise: the user message, in characters and in the judge's tokens; the system
message adds 28 characters to the turn-1 single prompts and 610–1,020 to the others). Prints seconds per question /
instruction / judge request and the share of judge answers that parsed.

    python benchmarks/bench_chat.py [--model smollm2-135m-instruct] [--mtbench 8] [--alpaca 8]
        [--judge local:smollm2-135m-instruct] [--threads 1] [--json runs/bench_chat.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

import lensteer
from lensteer.evaluation import alpaca, mtbench
from lensteer.evaluation.chatbench import make_chat_judge
from lensteer.evaluation.conditions import GenSettings
from lensteer.evaluation.judges import PAIRWISE_PROMPT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--mtbench", type=int, default=8)
    parser.add_argument("--alpaca", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--judge", default="local:smollm2-135m-instruct")
    parser.add_argument("--judge-max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"args": vars(args)}

    t0 = time.perf_counter()
    model = lensteer.load_model(args.model)
    out["load model s"] = time.perf_counter() - t0
    tok = model.tokenizer
    gen = GenSettings(max_new_tokens=args.max_new_tokens, batch_size=8)
    system = "You are a helpful assistant."

    qs = mtbench.load_questions(args.mtbench)
    t0 = time.perf_counter()
    answers = mtbench.generate_answers(model, qs, systems=system, gen=gen)
    dt = time.perf_counter() - t0
    tokens = [len(tok(t, add_special_tokens=False)["input_ids"]) for a in answers for t in a.turns]
    out["mtbench generate"] = {"questions": len(qs), "seconds": dt, "s_per_question": dt / len(qs),
                               "answer_tokens_mean": statistics.mean(tokens),
                               "hit_max_new_tokens": sum(not f for a in answers for f in a.finished)}

    items = alpaca.load_instructions(limit=args.alpaca)
    t0 = time.perf_counter()
    texts = alpaca.generate_answers(model, items, systems=system, gen=gen)
    dt = time.perf_counter() - t0
    out["alpaca generate"] = {"instructions": len(items), "seconds": dt,
                              "s_per_instruction": dt / len(items),
                              "answer_chars_mean": statistics.mean(len(t) for t in texts)}

    judge = make_chat_judge(args.judge, cache=None)
    if hasattr(judge, "max_new_tokens"):
        judge.max_new_tokens = args.judge_max_new_tokens
    judge_tok = getattr(getattr(judge, "model", None), "tokenizer", None) or tok
    prompts = mtbench.load_judge_prompts()
    # the prompts the panel sends, measured without sending them (pairwise: answers vs themselves)
    sizes: dict[str, list[str]] = {"single": [], "pairwise": [], "alpaca pairwise": []}
    for q, a in zip(qs, answers):
        refs = {f"ref_answer_{k + 1}": r for k, r in enumerate(q.reference)}
        math = "-math-v1" if q.reference else ""
        sizes["single"] += [prompts[f"single{math or '-v1'}"].render(
            question=q.turns[0], answer=a.turns[0], **refs).user,
            prompts[f"single{math or '-v1'}-multi-turn"].render(
                question_1=q.turns[0], question_2=q.turns[1], answer_1=a.turns[0],
                answer_2=a.turns[1], **refs).user]
        pair = "pair-math-v1" if q.reference else "pair-v2"
        sizes["pairwise"] += [prompts[pair].render(
            question=q.turns[0], answer_a=a.turns[0], answer_b=a.turns[0], **refs).user,
            prompts[pair + "-multi-turn"].render(
                question_1=q.turns[0], question_2=q.turns[1], answer_a_1=a.turns[0],
                answer_a_2=a.turns[1], answer_b_1=a.turns[0], answer_b_2=a.turns[1], **refs).user]
    for it, t in zip(items, texts):
        sizes["alpaca pairwise"].append(PAIRWISE_PROMPT.render(
            instruction=it.text, answer_a=t, answer_b=t).user)
    out["judge prompt chars (mean, user message)"] = {k: statistics.mean(map(len, v))
                                                      for k, v in sizes.items()}
    out["judge prompt tokens (mean, user message, judge tokenizer)"] = {
        k: statistics.mean(len(judge_tok(x, add_special_tokens=False)["input_ids"]) for x in v)
        for k, v in sizes.items()}

    t0 = time.perf_counter()
    single = mtbench.judge_single(judge, qs, answers, max_tokens=args.judge_max_new_tokens)
    dt = time.perf_counter() - t0
    n = len(single)
    out["judge single"] = {"judge": judge.name, "requests": n, "seconds": dt, "s_per_request": dt / n,
                           "parsed": sum(r["rating"] is not None for r in single),
                           "statuses": {s: sum(r["status"] == s for r in single)
                                        for s in sorted({r["status"] for r in single})}}
    print(json.dumps(out, indent=2))
    if args.json:
        from lensteer.io import write_json

        write_json(args.json, out)


if __name__ == "__main__":
    main()
