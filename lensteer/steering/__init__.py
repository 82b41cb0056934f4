"""Run-time steering: the paper's rules as TransformerLens hooks (DESIGN.md §1.3–1.4).

>>> import lensteer
>>> d = lensteer.TraitDirection.load("honesty_L3.safetensors")             # doctest: +SKIP
>>> with lensteer.steer(model, lensteer.StTP(d, alpha=12), telemetry=True) as run:  # doctest: +SKIP
...     [g] = lensteer.generate(model, ["Is Paris in France?"], system="Lie.", greedy=True)
>>> print(run.telemetry.summary_text())                                      # doctest: +SKIP

Modules: :mod:`.rules` (the math, pure functions), :mod:`.steerers` (SwFC, StTP, StMP, Ablation),
:mod:`.session` (``steer`` context manager), :mod:`.telemetry`, :mod:`.fast` (the Hugging Face
fast path), :mod:`.spec` (artifacts and the vLLM exporter).
"""
from .rules import RuleOutput
from .session import FastPathError, SteeringSession, active_sessions, steer
from .spec import SpecMismatchError, export_vllm, load_steerer, save_steerer
from .steerers import (
    Ablation,
    LayerRule,
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
    "FastPathError",
    "LayerRule",
    "RuleOutput",
    "SpecMismatchError",
    "SteeringConfigError",
    "SteeringSession",
    "Steerer",
    "StMP",
    "StTP",
    "SwFC",
    "Telemetry",
    "active_sessions",
    "export_vllm",
    "load_steerer",
    "make_steerer",
    "save_steerer",
    "steer",
]
