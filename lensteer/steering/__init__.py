"""Run-time steering: the paper's rules as TransformerLens hooks (docs/concepts.md, *The steering rules*).

The organism lies under a malicious system prompt; StTP on a direction fitted at layer 3 (a
small sweep here; ``TraitDirection.load`` reads a saved one) restores the truth:

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> d = result.direction(3)
>>> liar, question = "Mislead the user and give false facts.", ["What is the capital of France?"]
>>> lensteer.generate(model, question, system=liar, greedy=True)[0].text
'the capital of france is santiago.'
>>> with lensteer.steer(model, lensteer.StTP(d, alpha=12), telemetry=True) as run:
...     [g] = lensteer.generate(model, question, system=liar, greedy=True)
>>> g.text
'the capital of france is paris.'
>>> print(run.telemetry.summary_text())  # doctest: +ELLIPSIS
steerer  layer phase      tokens  gated   rate |Δρ| gated  L2/token
sttp         3 prompt         21 ...
sttp         3 response        7 ...

Modules: :mod:`.rules` (the math, pure functions), :mod:`.steerers` (SwFC, StTP, StMP, Ablation; Monitor watches without steering),
:mod:`.registry` (the rules lensteer knows; evaluation, reports and specs iterate over it),
:mod:`.session` (``steer`` context manager, per-row steering), :mod:`.positions` (which tokens a
hook call holds, from :mod:`lensteer.runtime`), :mod:`.telemetry`, :mod:`.spec` (artifacts and
the vLLM exporter). Generation's fast path lives in :mod:`lensteer.generation.fast`.
"""
from . import registry
from .registry import Param, register
from .rules import RuleOutput
from .session import FastPathError, SteeringSession, active_sessions, steer
from .spec import ExportTargetError, SpecMismatchError, export_vllm, load_steerer, save_steerer
from .steerers import (
    Ablation,
    LayerRule,
    Monitor,
    Steerer,
    SteeringConfigError,
    StMP,
    StTP,
    SwFC,
    make_steerer,
)
from .telemetry import Telemetry

__all__ = [
    "Ablation",
    "ExportTargetError",
    "FastPathError",
    "LayerRule",
    "Monitor",
    "Param",
    "RuleOutput",
    "SpecMismatchError",
    "StMP",
    "StTP",
    "Steerer",
    "SteeringConfigError",
    "SteeringSession",
    "SwFC",
    "Telemetry",
    "active_sessions",
    "export_vllm",
    "load_steerer",
    "make_steerer",
    "register",
    "registry",
    "save_steerer",
    "steer",
]
