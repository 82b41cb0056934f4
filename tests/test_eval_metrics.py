"""Evaluation metrics against hand-computed values: bootstrap, recovery, repetition, the
cross-entropy of response tokens under a model with a known distribution, multiple-choice
scoring where the answer is forced, teacher-forced steering by position mode, MC files."""
from __future__ import annotations

import math

import pytest
import torch

import lensteer
from lensteer.directions import TraitDirection
from lensteer.evaluation import (
    MCQuestion,
    bootstrap_ci,
    continuation_logprobs,
    intervention_size,
    load_mc,
    mc_accuracy,
    parse_choice,
    recovery,
    repetition_per_turn,
    response_cross_entropy,
    token_cross_entropy,
)
from lensteer.evaluation.capability import MCFileError
from lensteer.evaluation.metrics import response_length
from lensteer.generation import Generation


# ------------------------------------------------------------------ aggregates
def test_bootstrap_constant_seeded_and_drops_missing():
    e = bootstrap_ci([2.0, 2.0, None, float("nan"), 2.0])
    assert (e.mean, e.lo, e.hi, e.n) == (2.0, 2.0, 2.0, 3)
    a = bootstrap_ci([0, 1, 0, 1, 1, 0, 1], seed=3)
    assert a == bootstrap_ci([0, 1, 0, 1, 1, 0, 1], seed=3)
    assert a.lo < 4 / 7 < a.hi and a.mean == pytest.approx(4 / 7)
    assert bootstrap_ci([]).mean is None


def test_recovery_hand_computed():
    r = recovery([60, 80], [90, 90], [10, 30])  # (70 - 20) / (90 - 20)
    assert r.mean == pytest.approx(50 / 70)
    assert r.lo <= r.mean <= r.hi
    assert recovery([1], [5], [5]).mean is None  # no gap


# ------------------------------------------------------------------ repetition
def test_repetition_per_turn_crafted():
    turns = ["a b a b a b", "a b c", "d e f"]
    r = repetition_per_turn(turns, n=2)
    # turn 1 bigrams: ab ba ab ba ab -> 2 distinct of 5; 3 repeats within the turn
    assert r[0] == {"distinct_n": 0.4, "within_turn": 0.6, "across_turns": 0.0, "length": 6.0}
    # turn 2 bigrams: ab (seen in turn 1), bc (new)
    assert r[1]["across_turns"] == 0.5 and r[1]["within_turn"] == 0.0 and r[1]["length"] == 3.0
    assert r[2]["across_turns"] == 0.0
    assert response_length(["the capital of france is paris .", ""]) == [7, 0]


def test_repetition_looping_text_is_flagged():
    loop = "the capital of the capital of the capital of the capital of"
    [r] = repetition_per_turn([loop], n=3)
    assert r["within_turn"] > 0.6 and r["distinct_n"] < 0.4


# ------------------------------------------------------------------ cross-entropy
def test_token_cross_entropy_known_distribution():
    p = torch.tensor([0.5, 0.25, 0.125, 0.125])
    lp = torch.log(p).expand(1, 3, 4)
    ce = token_cross_entropy(lp, torch.tensor([[0, 1, 3]]), torch.tensor([[1, 1, 0]]))
    assert float(ce[0]) == pytest.approx((math.log(2) + math.log(4)) / 2)


class ChainLM(torch.nn.Module):
    """P(next = current + 1 mod V) = 0.9, the rest uniform: a known distribution that depends
    on the position, so an off-by-one in the scoring layout changes the answer."""

    def __init__(self, tokenizer, vocab: int) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens, attention_mask=None):
        nxt = (tokens + 1) % self.vocab
        probs = torch.full((*tokens.shape, self.vocab), 0.1 / (self.vocab - 1))
        probs.scatter_(-1, nxt.unsqueeze(-1), 0.9)
        return torch.log(probs)


def _gen(tokenizer, user, response_ids, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return Generation(messages=msgs, text="", prompt_ids=[], response_ids=response_ids, finished=True)


def test_response_cross_entropy_known_distribution(tiny_model):
    tok = tiny_model.tokenizer
    V = len(tok)
    lm = ChainLM(tok, V)
    systems = ["be kind .", "you are a helpful assistant . be kind and honest ."]
    gens = []
    for k, (user, system) in enumerate([("hello there !", systems[0]), ("what is two plus two ?", systems[1])]):
        last = lensteer.format_chat(tok, [{"role": "system", "content": system},
                                          {"role": "user", "content": user}]).input_ids[-1]
        chain = [(last + i) % V for i in range(1, 8)]  # follows the chain from the prompt's end
        if k == 1:
            chain[3] = (chain[2] + 5) % V  # one off-chain token
        gens.append(_gen(tok, user, chain, system="always lie ."))
    ce = response_cross_entropy(lm, gens, systems, batch_size=2)
    hi, lo = -math.log(0.9), -math.log(0.1 / (V - 1))
    assert ce[0] == pytest.approx(hi, abs=1e-5)
    # token 3 is off-chain (low prob) and token 4 then does not follow it either
    assert ce[1] == pytest.approx((5 * hi + 2 * lo) / 7, abs=1e-5)
    # only the first max_tokens count
    assert response_cross_entropy(lm, gens[1:], systems[1:], max_tokens=3)[0] == pytest.approx(hi, abs=1e-5)
    assert response_cross_entropy(lm, [_gen(tok, "hi", [])], "be kind .") == [None]


def test_response_cross_entropy_batched_equals_single_on_tiny_model(tiny_model):
    tok = tiny_model.tokenizer
    gens = lensteer.generate(tiny_model, ["hello there !", "what is two plus two ? it is four .",
                                          "be kind ."], system="always lie .", greedy=True,
                             max_new_tokens=6)
    batched = response_cross_entropy(tiny_model, gens, "be kind and honest .", batch_size=3)
    for g, value in zip(gens, batched):
        msgs = [{"role": "system", "content": "be kind and honest ."}] + [
            m for m in g.messages if m["role"] != "system"]
        prompt = lensteer.format_chat(tok, msgs).input_ids
        ids = torch.tensor([prompt + g.response_ids])
        with torch.no_grad():
            lp = torch.log_softmax(tiny_model(ids).float(), -1)[0]
        manual = -sum(float(lp[len(prompt) - 1 + k, t]) for k, t in enumerate(g.response_ids)) / len(g.response_ids)
        assert value == pytest.approx(manual, abs=1e-4)


def _direction(model, layer=1):
    g = torch.Generator().manual_seed(0)
    return TraitDirection(v_hat=torch.randn(model.cfg.d_model, generator=g), boundary=0.0,
                          mu_pos=2.0, sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5, layer=layer,
                          hook=f"blocks.{layer}.hook_resid_post",
                          model=lensteer.model_info(model).to_dict())


def test_continuation_logprobs_respects_position_modes(tiny_model):
    tiny_model.reset_hooks()
    tok = tiny_model.tokenizer
    prompts = [lensteer.format_chat(tok, "hello there !").input_ids,
               lensteer.format_chat(tok, "be kind and honest .").input_ids]
    conts = [tok("it is four .", add_special_tokens=False)["input_ids"],
             tok("i am fine", add_special_tokens=False)["input_ids"]]
    plain = continuation_logprobs(tiny_model, prompts, conts)
    d = _direction(tiny_model)
    with lensteer.steer(tiny_model, lensteer.SwFC(d, alpha=5, positions="response")):
        resp = continuation_logprobs(tiny_model, prompts, conts)
    with lensteer.steer(tiny_model, lensteer.SwFC(d, alpha=5, positions="all")):
        every = continuation_logprobs(tiny_model, prompts, conts)
    for p, r, a in zip(plain, resp, every):
        # the first continuation token is predicted from the last prompt position: response-mode
        # steering has not touched anything it sees; all-mode steering has
        assert float(r[0]) == pytest.approx(float(p[0]), abs=1e-5)
        assert abs(float(a[0]) - float(p[0])) > 1e-4
        assert (r[1:] - p[1:]).abs().max() > 1e-4


# ------------------------------------------------------------------ multiple choice
class HotLM(torch.nn.Module):
    """Puts probability 0.9 on one token everywhere: the option whose reply is that token wins."""

    def __init__(self, tokenizer, hot: int) -> None:
        super().__init__()
        self.tokenizer, self.hot = tokenizer, hot
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens, attention_mask=None):
        V = len(self.tokenizer)
        probs = torch.full((*tokens.shape, V), 0.1 / (V - 1))
        probs[..., self.hot] = 0.9
        return torch.log(probs)


def test_mc_loglik_forced_answer(tiny_model):
    tok = tiny_model.tokenizer
    hot = tok("A", add_special_tokens=False)["input_ids"]
    assert len(hot) == 1
    lm = HotLM(tok, hot[0])
    qs = [
        MCQuestion("q1", ("w", "x", "y", "z"), 0, continuations=("A", "B", "C", "D")),
        MCQuestion("q2", ("w", "x", "y", "z"), 2, continuations=("B", "C", "A", "D")),
        MCQuestion("q3", ("w", "x", "y", "z"), 3, continuations=("D", "C", "B", "A")),
        MCQuestion("q4", ("w", "x", "y", "z"), 1, continuations=("A", "B", "C", "D")),  # forced wrong
    ]
    assert mc_accuracy(lm, qs, methods=["loglik"], systems="be kind .") == {"loglik": [1.0, 1.0, 1.0, 0.0]}


def test_mc_letter_runs_on_tiny_model(tiny_model):
    tiny_model.reset_hooks()
    qs = load_mc("general", limit=3)
    out = mc_accuracy(tiny_model, qs, methods=["loglik", "letter"], max_new_tokens=4)
    assert set(out) == {"loglik", "letter"} and all(len(v) == 3 for v in out.values())
    assert all(x in (0.0, 1.0) for v in out.values() for x in v)


def test_parse_choice():
    assert parse_choice("The answer is 7, which is option b.") == "B"
    assert parse_choice("the answer is d ) 9 .") == "D"
    assert parse_choice("(c) Rome") == "C"
    assert parse_choice("A") == "A"
    assert parse_choice("I do not know") is None


def test_load_mc_files(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("question,A,B,C,D,answer\nWhat is 1+1?,1,2,3,4,B\n")
    [q] = load_mc(csv_path)
    assert q.answer == 1 and q.options == ("1", "2", "3", "4") and "B) 2" in q.user_message()
    jl = tmp_path / "m.jsonl"
    jl.write_text('{"question": "x?", "choices": ["a", "b", "c", "d"], "answer": 3}\n')
    assert load_mc(jl)[0].letter == "D"
    jl.write_text('{"question": "x?", "options": ["a", "b"], "answer": 0}\n')
    with pytest.raises(MCFileError, match="4 entries"):
        load_mc(jl)
    csv_path.write_text("q,1,2,3,4,E\n")
    with pytest.raises(MCFileError, match="answer must be"):
        load_mc(csv_path)
    organism = load_mc("organism")
    assert len(organism) >= 100 and organism[0].replies()[organism[0].answer].startswith("The answer is")
    general = load_mc("general")
    assert len(general) == 100 and {q.letter for q in general} == set("ABCD")


# ------------------------------------------------------------------ intervention size
class _Tel:
    def summary(self):
        return [
            {"steerer": "sttp", "layer": 1, "phase": "prompt", "tokens": 10, "gated": 5,
             "gate_rate": 0.5, "mean_abs_delta_gated": 2.0, "mean_l2_per_token": 1.0},
            {"steerer": "sttp", "layer": 1, "phase": "response", "tokens": 30, "gated": 3,
             "gate_rate": 0.1, "mean_abs_delta_gated": 4.0, "mean_l2_per_token": 0.4},
            {"steerer": "sttp", "layer": 2, "phase": "response", "tokens": 10, "gated": 7,
             "gate_rate": 0.7, "mean_abs_delta_gated": 1.0, "mean_l2_per_token": 0.7},
        ]


def test_intervention_size_from_telemetry():
    out = intervention_size(_Tel())
    assert out["gate_rate_prompt"] == 0.5 and out["l2_per_token_prompt"] == 1.0
    assert out["gate_rate_response"] == pytest.approx(10 / 40)
    assert out["l2_per_token_response"] == pytest.approx((0.4 * 30 + 0.7 * 10) / 40)
    assert intervention_size(None) == {}
