"""Evaluation: the paper's protocol (docs/concepts.md, *Evaluation and the operating point*) — metrics, judges, capability, the
operating-point sweep, multi-turn repetition, reports and ``lensteer demo``.

Modules: :mod:`.metrics` (bootstrap intervals, recovery, repetition, cross-entropy, intervention
size), :mod:`.judges` (``Judge`` protocol; organism graders, OpenAI-compatible HTTP judge with a
SQLite cache, local Hugging Face judge, probe judge; every judge prompt and parser),
:mod:`.forward` (teacher-forced scoring), :mod:`.capability` (multiple choice by log-likelihood
and by letter), :mod:`.conditions`, :mod:`.sweep` (resumable, selection rule), :mod:`.multiturn`,
:mod:`.mtbench` and :mod:`.alpaca` (chat benchmarks), :mod:`.chatbench` (the side-effect panel),
:mod:`.evaluate` (end to end), :mod:`.report`, :mod:`.plots`, :mod:`.demo`.

>>> from lensteer.evaluation import PAPER_GRID, choose_operating_points
>>> PAPER_GRID["sttp"][:3]
[0.0, 6.0, 12.0]
"""
from .capability import MCQuestion, load_mc, mc_accuracy, parse_choice
from .chatbench import ChatBench, ChatBenchConfig
from .conditions import Condition, EvalItem, GenSettings, build_items, run_condition, run_conditions
from .evaluate import EvaluateConfig, default_judge, directions_by_layer, evaluate
from .forward import continuation_logprobs, response_cross_entropy
from .judges import (
                     ChatJudge,
                     Judge,
                     JudgeAnswer,
                     JudgeError,
                     JudgeItem,
                     JudgePrompt,
                     JudgeRequest,
                     LocalJudge,
                     OpenAIJudge,
                     OrganismJudge,
                     PairOutcome,
                     ProbeJudge,
                     Verdict,
                     VerdictCache,
                     pair_outcomes,
)
from .metrics import (
                     Estimate,
                     bootstrap_ci,
                     intervention_size,
                     recovery,
                     repetition_per_turn,
                     response_length,
                     token_cross_entropy,
)
from .multiturn import run_multiturn
from .report import write_report
from .search import HalvingConfig, SearchResult, successive_halving
from .sweep import PAPER_GRID, SweepCheckpoint, choose_operating_points, grid_conditions, run_cells

__all__ = [
                     "PAPER_GRID",
                     "ChatBench",
                     "ChatBenchConfig",
                     "ChatJudge",
                     "Condition",
                     "Estimate",
                     "EvalItem",
                     "EvaluateConfig",
                     "GenSettings",
                     "HalvingConfig",
                     "Judge",
                     "JudgeAnswer",
                     "JudgeError",
                     "JudgeItem",
                     "JudgePrompt",
                     "JudgeRequest",
                     "LocalJudge",
                     "MCQuestion",
                     "OpenAIJudge",
                     "OrganismJudge",
                     "PairOutcome",
                     "ProbeJudge",
                     "SearchResult",
                     "SweepCheckpoint",
                     "Verdict",
                     "VerdictCache",
                     "bootstrap_ci",
                     "build_items",
                     "choose_operating_points",
                     "continuation_logprobs",
                     "default_judge",
                     "directions_by_layer",
                     "evaluate",
                     "grid_conditions",
                     "intervention_size",
                     "load_mc",
                     "mc_accuracy",
                     "pair_outcomes",
                     "parse_choice",
                     "recovery",
                     "repetition_per_turn",
                     "response_cross_entropy",
                     "response_length",
                     "run_cells",
                     "run_condition",
                     "run_conditions",
                     "run_multiturn",
                     "successive_halving",
                     "token_cross_entropy",
                     "write_report",
]
