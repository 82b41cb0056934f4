"""Steerers: the paper's rules built from a :class:`~lensteer.directions.TraitDirection`.

A steerer resolves its direction's statistics into the numbers a rule needs (threshold, target,
coefficient, cap) once, per layer, and hands out hook functions. The same
:meth:`Steerer.apply` serves both attachments: the TransformerLens hook point
(:meth:`Steerer.hooks`) and the torch module hook of the fast path.

>>> import torch
>>> from lensteer.directions import TraitDirection
>>> d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0, sigma_pos=0.5,
...                    mu_neg=-2.0, sigma_neg=0.5, layer=0, hook="blocks.0.hook_resid_post")
>>> StTP(d, alpha=2).rules[0].target          # μ⁺ + α σ⁺
3.0
>>> StMP(d, alpha=1, sign="negative").rules[0].cap   # μ⁻ − 40 σ⁻
-22.0
"""
from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..directions import InvalidDirectionError, TraitDirection, quantile, unit_vector
from ..errors import LensteerError, warn_caller
from ..hooks import canonical_name, check_layer, hook_name, parse_hook_name
from ..protocols import LensModel
from . import registry, rules
from .positions import PositionTracker
from .registry import Param, register
from .telemetry import Telemetry

Sign = Literal["positive", "negative"]
Positions = Literal["all", "response", "prompt"]
Calibration = Literal["response", "token"]
POSITIONS = ("all", "response", "prompt")
SIGNS = ("positive", "negative")
CALIBRATIONS = ("response", "token")


class SteeringConfigError(LensteerError, ValueError):
    """A steerer built with a parameter that has no meaning (unknown method, α < 0, …)."""


def parse_threshold(spec: str | float | tuple[str, float]) -> tuple[str, float | None]:
    """``"boundary"`` → ``("boundary", None)``; ``"p10"`` / ``"percentile:10"`` /
    ``("percentile", 10)`` → ``("percentile", 10.0)``.

    >>> parse_threshold("p10"), parse_threshold("boundary")
    (('percentile', 10.0), ('boundary', None))
    """
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] == "percentile":
        q = float(spec[1])
    elif spec == "boundary":
        return ("boundary", None)
    elif isinstance(spec, str) and (m := re.fullmatch(r"(?:p|percentile:?)(\d+(?:\.\d+)?)", spec.strip())):
        q = float(m.group(1))
    else:
        raise SteeringConfigError(
            f"Unknown threshold {spec!r}: use 'boundary' (the logistic-regression boundary m, the "
            "paper's) or a percentile of aligned per-token projections such as 'p10'."
        )
    if not 0 <= q <= 100:
        raise SteeringConfigError(f"A percentile threshold must lie in [0, 100], got {q}.")
    return ("percentile", q)


@dataclass
class LayerRule:
    """The resolved numbers of one steerer at one hook point (see :meth:`Steerer.rules`)."""

    layer: int
    point: str
    hook: str  # legacy name, blocks.L.hook_<point>
    v_hat: Float[Tensor, " d_model"]
    sign: int
    threshold: float | None = None  # StTP / StMP gate and mirror point
    target: float | None = None  # StTP
    coefficient: float | None = None  # StMP α
    cap: float | None = None  # StMP
    amount: float | None = None  # SwFC: ±α·Δμ
    extra: dict[str, float] = field(default_factory=dict)  # numbers of rules defined elsewhere

    def to_dict(self) -> dict[str, Any]:
        """The numbers (v̂ excluded; settings a rule does not use are left out)."""
        out = {k: v for k, v in self.__dict__.items()
               if k not in ("v_hat", "extra") and v is not None}
        return {**out, **self.extra}


class Steerer:
    """Base of the steering rules. A rule subclasses it, declares the class attributes below,
    resolves its numbers in :meth:`_resolve`, applies its rule function in :meth:`_rule`, and is
    added to the registry with :func:`lensteer.steering.registry.register`.

    Args:
        direction: a :class:`TraitDirection`, or several (one per layer) to steer several
            layers at once.
        alpha: the rule's coefficient (≥ 0; flip the push with ``sign`` instead).
        sign: ``"positive"`` pushes toward the aligned side (the paper's use); ``"negative"``
            mirrors the rule and pushes toward the malicious side (induces the trait).
        threshold: ``"boundary"`` (the LR boundary m) or ``"pXX"`` (the XX-th percentile of
            aligned per-token projections; needs ``direction.token_stats``).
        calibration: ``"response"`` (μ, σ of response-averaged projections, the paper's) or
            ``"token"`` (of per-token projections; needs ``direction.token_stats``).
        positions: ``"all"`` (prompt during prefill and every generated token), ``"response"``
            or ``"prompt"``.
        layers: apply the (single) direction at these layers instead of its own.
    """

    #: The rule's name in specs, conditions and the CLI (lower case).
    method: ClassVar[str] = ""
    #: How reports and plots write it.
    display_name: ClassVar[str] = ""
    #: The paper's α grid: the default operating-point sweep (empty: not swept by default).
    paper_grid: ClassVar[tuple[float, ...]] = ()
    #: Whether the rule gates tokens on a threshold (threshold and calibration variants apply).
    gated: ClassVar[bool] = True
    #: Extra numeric constructor parameters: attributes, serialised in ``config()`` and specs.
    params: ClassVar[dict[str, Param]] = {}
    #: Other names ``make_steerer`` accepts.
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        direction: TraitDirection | Sequence[TraitDirection],
        alpha: float = 1.0,
        *,
        sign: Sign = "positive",
        threshold: str | tuple[str, float] = "boundary",
        calibration: Calibration = "response",
        positions: Positions = "all",
        layers: Sequence[int] | None = None,
        **params: float,
    ) -> None:
        self._set_params(params)
        directions = [direction] if isinstance(direction, TraitDirection) else list(direction)
        if not directions or not all(isinstance(d, TraitDirection) for d in directions):
            raise SteeringConfigError(
                "A steerer needs a TraitDirection (or a list of them, one per layer)."
            )
        if layers is not None:
            if len(directions) != 1:
                raise SteeringConfigError("Pass `layers=` with a single direction, not a list.")
            directions = [_at_layer(directions[0], int(layer)) for layer in layers]
        seen = [(d.layer, parse_hook_name(d.hook)[1]) for d in directions]
        if len(set(seen)) != len(seen):
            raise SteeringConfigError(f"Two directions target the same hook point: {seen}.")
        try:
            alpha = float(alpha)
        except (TypeError, ValueError):
            raise SteeringConfigError(f"alpha must be a number, got {alpha!r}.") from None
        if not math.isfinite(alpha) or alpha < 0:
            raise SteeringConfigError(
                f"alpha must be a finite number ≥ 0, got {alpha}. To push the other way use "
                "sign='negative'."
            )
        if sign not in SIGNS:
            raise SteeringConfigError(f"Unknown sign {sign!r}: use 'positive' or 'negative'.")
        if positions not in POSITIONS:
            raise SteeringConfigError(f"Unknown positions {positions!r}: use one of {POSITIONS}.")
        if calibration not in CALIBRATIONS:
            raise SteeringConfigError(
                f"Unknown calibration {calibration!r}: use 'response' (the paper's) or 'token'."
            )
        self.directions = directions
        self.alpha = alpha
        self.sign: Sign = sign
        self.threshold_source, self.percentile = parse_threshold(threshold)
        self.calibration: Calibration = calibration
        self.positions: Positions = positions
        needs_tokens = self.calibration == "token" or self.threshold_source == "percentile"
        for d in directions:
            if needs_tokens and d.token_stats is None:
                raise SteeringConfigError(
                    f"calibration='token' and percentile thresholds need per-token statistics, "
                    f"but the direction for layer {d.layer} has none (token_stats is None). Fit it "
                    "with per-token statistics, or use threshold='boundary', calibration='response'."
                )
        self.rules: list[LayerRule] = [self._resolve(d) for d in directions]

    def _set_params(self, given: dict[str, Any]) -> None:
        """Check and set the rule's extra parameters (:attr:`params`)."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise SteeringConfigError(
                f"{type(self).__name__} has no parameter {unknown[0]!r} (its extra parameters: "
                f"{known}).")
        for name, param in self.params.items():
            value = given.get(name, param.default)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise SteeringConfigError(f"{name} must be a number, got {value!r}.") from None
            low = param.minimum
            if not math.isfinite(value) or (low is not None and value < low):
                bound = "" if low is None else f" ≥ {low:g}"
                raise SteeringConfigError(f"{name} must be a finite number{bound}, got {value}.")
            setattr(self, name, value)

    # ------------------------------------------------------------------ resolution
    @property
    def sign_value(self) -> int:
        return 1 if self.sign == "positive" else -1

    def _stats(self, d: TraitDirection) -> tuple[float, float, float, float]:
        """(μ⁺, σ⁺, μ⁻, σ⁻) in the chosen calibration."""
        if self.calibration == "token":
            t = d.token_stats
            assert t is not None
            return t.mu_pos, t.sigma_pos, t.mu_neg, t.sigma_neg
        return d.mu_pos, d.sigma_pos, d.mu_neg, d.sigma_neg

    def _threshold(self, d: TraitDirection) -> float:
        if self.threshold_source == "boundary":
            return d.boundary
        t = d.token_stats
        assert t is not None and self.percentile is not None
        if self.sign == "positive":
            return t.percentile_pos(self.percentile)
        return quantile(t.quantiles_neg, 100.0 - self.percentile)  # the mirror image

    def _resolve(self, d: TraitDirection) -> LayerRule:
        point = parse_hook_name(d.hook)[1]
        try:
            v_hat = unit_vector(d.v_hat)
        except InvalidDirectionError as error:
            raise SteeringConfigError(f"The direction for layer {d.layer}: {error}") from None
        return LayerRule(d.layer, point, d.hook, v_hat, self.sign_value)

    # ------------------------------------------------------------------ the rule
    def _rule(
        self, h: Tensor, rule: LayerRule, mask: Bool[Tensor, "batch pos"]
    ) -> rules.RuleOutput:
        raise NotImplementedError

    def apply(
        self,
        h: Float[Tensor, "batch pos d_model"],
        mask: Bool[Tensor, "batch pos"] | None = None,
        *,
        layer: int | None = None,
    ) -> rules.RuleOutput:
        """Apply this steerer's rule to activations of one of its layers (default: the first).

        >>> from lensteer.directions import TraitDirection
        >>> d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0,
        ...                    sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5, layer=0,
        ...                    hook="blocks.0.hook_resid_post")
        >>> steerer = StTP(d, alpha=2)                    # target μ⁺ + α σ⁺ = 3
        >>> resid = torch.tensor([[[-1.0, 5.0], [1.0, 5.0]]])  # ρ = −1 (< m = 0) and ρ = 1
        >>> out = steerer.apply(resid)
        >>> out.gated, out.rho_before, out.rho_after
        (tensor([[ True, False]]), tensor([[-1.,  1.]]), tensor([[3., 1.]]))
        >>> out.h
        tensor([[[3., 5.],
                 [1., 5.]]])
        """
        rule = self.rules[0] if layer is None else self.rule_for(layer)
        if mask is None:
            mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
        return self._rule(h, rule, mask)

    def rule_for(self, layer: int, point: str | None = None) -> LayerRule:
        for rule in self.rules:
            if rule.layer == layer and (point is None or rule.point == point):
                return rule
        raise SteeringConfigError(f"This steerer does not steer layer {layer}.")

    # ------------------------------------------------------------------ models and hooks
    def check_model(self, model: LensModel, *, strict: bool = True) -> None:
        """Raise a :class:`LensteerError` unless every direction fits ``model``."""
        for d in self.directions:
            d.check_model(model, strict=strict)
            check_layer(model, d.layer)
            hook_name(model, d.layer, parse_hook_name(d.hook)[1])

    def hooks(
        self, model: LensModel, *, telemetry: Telemetry | None = None, strict: bool = True,
        rows: Collection[int] | None = None,
    ) -> list[tuple[str, SteerHook]]:
        """``(hook name, hook fn)`` pairs for ``model.hooks(...)`` / ``run_with_hooks``.

        ``rows``: act only on these inputs (conversation indices of :func:`lensteer.generate`,
        see :class:`lensteer.runtime.BatchContext`); default every row.

        >>> import lensteer
        >>> from lensteer.directions import TraitDirection
        >>> model = lensteer.load_model("organism")
        >>> d = TraitDirection(v_hat=torch.ones(128), boundary=0.0, mu_pos=1.0, sigma_pos=0.1,
        ...                    mu_neg=-1.0, sigma_neg=0.1, layer=2, hook="blocks.2.hook_resid_post")
        >>> steerer = Ablation(d)
        >>> [(name, type(fn).__name__) for name, fn in steerer.hooks(model)]
        [('blocks.2.hook_out', 'SteerHook')]
        >>> tokens = torch.tensor([[1, 5, 6, 7]])
        >>> with torch.no_grad(), model.hooks(fwd_hooks=steerer.hooks(model)):
        ...     logits = model(tokens)
        >>> with torch.no_grad():
        ...     plain = model(tokens)
        >>> logits.shape == plain.shape, torch.allclose(logits, plain)
        (True, False)
        """
        self.check_model(model, strict=strict)
        return [
            (canonical_name(model, rule.hook), SteerHook(self, rule, telemetry, rows=rows))
            for rule in self.rules
        ]

    # ------------------------------------------------------------------ serving
    def vllm_payload(self, rule: LayerRule) -> dict[str, float] | None:
        """The numbers the paper's vLLM fork reads for ``rule`` besides ``v_hat`` and
        ``direction`` (docs/vllm.md); ``None``: the fork cannot serve this rule."""
        return None

    @classmethod
    def supports_vllm(cls) -> bool:
        """Whether the rule implements :meth:`vllm_payload`."""
        return cls.vllm_payload is not Steerer.vllm_payload

    # ------------------------------------------------------------------ description
    def config(self) -> dict[str, Any]:
        """The steerer's settings as JSON-ready data (directions excluded; extra parameters
        last)."""
        threshold = "boundary" if self.threshold_source == "boundary" else f"p{self.percentile:g}"
        return {
            "method": self.method,
            "alpha": self.alpha,
            "sign": self.sign,
            "threshold": threshold,
            "calibration": self.calibration,
            "positions": self.positions,
            "layers": [r.layer for r in self.rules],
            "points": [r.point for r in self.rules],
            **{name: getattr(self, name) for name in self.params},
        }

    def __repr__(self) -> str:
        c = self.config()
        return (
            f"{type(self).__name__}(alpha={c['alpha']:g}, sign={c['sign']!r}, threshold="
            f"{c['threshold']!r}, calibration={c['calibration']!r}, positions={c['positions']!r}, "
            f"layers={c['layers']})"
        )


def _at_layer(d: TraitDirection, layer: int) -> TraitDirection:
    """A copy of ``d`` moved to another layer (same hook point type)."""
    if layer < 0:
        raise SteeringConfigError(f"Layer {layer} does not exist: layers are numbered from 0.")
    from dataclasses import replace

    point = parse_hook_name(d.hook)[1]
    return replace(d, layer=layer, hook=f"blocks.{layer}.hook_{point}", hook_canonical="")


class SwFC(Steerer):
    """Steering with a fixed coefficient: ``h' = h ± α·Δμ·v̂`` on every selected token."""

    method = "swfc"
    display_name = "SwFC"
    paper_grid = (1.0, 2.0, 3.0, 4.0, 5.0)
    gated = False

    def _resolve(self, d: TraitDirection) -> LayerRule:
        rule = super()._resolve(d)
        mu_pos, _, mu_neg, _ = self._stats(d)
        rule.amount = self.sign_value * self.alpha * (mu_pos - mu_neg)
        return rule

    def _rule(self, h: Tensor, rule: LayerRule, mask: Tensor) -> rules.RuleOutput:
        return rules.shift(h, rule.v_hat, mask, amount=_number(rule.amount))


class StTP(Steerer):
    """Steer to target projection: tokens with ``ρ < m`` are set to ``ρ = μ⁺ + α σ⁺``
    (``"negative"``: ``ρ > m`` set to ``μ⁻ − α σ⁻``)."""

    method = "sttp"
    display_name = "StTP"
    paper_grid = (0.0, 6.0, 12.0, 18.0, 24.0, 30.0, 36.0)

    def _resolve(self, d: TraitDirection) -> LayerRule:
        rule = super()._resolve(d)
        mu_pos, sigma_pos, mu_neg, sigma_neg = self._stats(d)
        rule.threshold = self._threshold(d)
        rule.target = (
            mu_pos + self.alpha * sigma_pos if self.sign == "positive" else mu_neg - self.alpha * sigma_neg
        )
        return rule

    def _rule(self, h: Tensor, rule: LayerRule, mask: Tensor) -> rules.RuleOutput:
        return rules.to_target(h, rule.v_hat, mask, threshold=_number(rule.threshold),
                               target=_number(rule.target), sign=rule.sign)

    def vllm_payload(self, rule: LayerRule) -> dict[str, float] | None:
        return {"threshold": _number(rule.threshold), "target": _number(rule.target)}


class StMP(Steerer):
    """Steer to mirror projection: gated tokens get ``ρ' = ρ + α(2m − 2ρ)``, capped at
    ``μ⁺ + cap_sigmas·σ⁺`` (``"negative"``: floored at ``μ⁻ − cap_sigmas·σ⁻``)."""

    method = "stmp"
    display_name = "StMP"
    paper_grid = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
    params = {"cap_sigmas": Param(40.0, minimum=0.0, help="cap at μ⁺ + cap_sigmas·σ⁺")}
    cap_sigmas: float

    def _resolve(self, d: TraitDirection) -> LayerRule:
        rule = super()._resolve(d)
        mu_pos, sigma_pos, mu_neg, sigma_neg = self._stats(d)
        rule.threshold = self._threshold(d)
        rule.coefficient = self.alpha
        rule.cap = (
            mu_pos + self.cap_sigmas * sigma_pos
            if self.sign == "positive"
            else mu_neg - self.cap_sigmas * sigma_neg
        )
        return rule

    def _rule(self, h: Tensor, rule: LayerRule, mask: Tensor) -> rules.RuleOutput:
        return rules.mirror(
            h,
            rule.v_hat,
            mask,
            threshold=_number(rule.threshold),
            coefficient=_number(rule.coefficient),
            cap=_number(rule.cap),
            sign=rule.sign,
        )

    def vllm_payload(self, rule: LayerRule) -> dict[str, float] | None:
        return {"threshold": _number(rule.threshold), "coefficient": _number(rule.coefficient),
                "cap": _number(rule.cap)}


class Ablation(Steerer):
    """Directional ablation, the refusal-literature baseline: ``h' = h − ρ v̂``.

    It has no coefficient nor sign: ``alpha`` is ignored (kept for a uniform signature).
    """

    method = "ablate"
    display_name = "Ablation"
    aliases = ("ablation",)
    gated = False

    def __init__(self, direction: TraitDirection | Sequence[TraitDirection], alpha: float = 1.0,
                 **kwargs: Any):
        if kwargs.get("sign", "positive") != "positive":
            raise SteeringConfigError("Ablation removes the v̂ component; it has no sign.")
        super().__init__(direction, alpha, **kwargs)

    def _rule(self, h: Tensor, rule: LayerRule, mask: Tensor) -> rules.RuleOutput:
        return rules.ablate(h, rule.v_hat, mask)


for _cls in (SwFC, StTP, StMP, Ablation):
    register(_cls)


class Monitor(Steerer):
    """Watch a direction without steering: every token's ρ and whether it lies on the wrong
    side of the threshold (the boundary m by default) go to telemetry; activations pass through
    unchanged. Not a registered rule — it steers nothing, so it has no place in a sweep —
    ``lensteer serve``'s ``monitor`` is built from it (:meth:`watching`).

    >>> from lensteer.directions import TraitDirection
    >>> d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0,
    ...                    sigma_pos=0.5, mu_neg=-2.0, sigma_neg=0.5, layer=0,
    ...                    hook="blocks.0.hook_resid_post")
    >>> resid = torch.tensor([[[-1.0, 5.0], [1.0, 5.0]]])
    >>> out = Monitor(d).apply(resid)
    >>> out.h is resid, out.rho_before.tolist(), out.gated.tolist()
    (True, [[-1.0, 1.0]], [[True, False]])
    >>> Monitor.watching(StTP(d, alpha=12, sign="negative")).rules[0].sign
    -1
    """

    method = "monitor"
    display_name = "Monitor"

    def _resolve(self, d: TraitDirection) -> LayerRule:
        rule = super()._resolve(d)
        rule.threshold = self._threshold(d)
        return rule

    def _rule(self, h: Tensor, rule: LayerRule, mask: Tensor) -> rules.RuleOutput:
        return rules.observe(h, rule.v_hat, mask, threshold=_number(rule.threshold),
                             sign=rule.sign)

    @classmethod
    def watching(cls, steerer: Steerer) -> Monitor:
        """A monitor on ``steerer``'s directions, side (sign), threshold and calibration, on
        every token (prompt and response)."""
        return cls(steerer.directions, sign=steerer.sign, threshold=steerer.config()["threshold"],
                   calibration=steerer.calibration)


def _number(value: float | None) -> float:
    """A resolved rule number that the rule's ``_resolve`` set (``None`` is a bug there)."""
    if value is None:
        raise SteeringConfigError("A rule number was not resolved; the rule's _resolve must set it.")
    return float(value)


def __getattr__(name: str) -> Any:
    if name == "METHODS":  # the old name of the rule table: {name: rule class}
        return {cls.method: cls for cls in registry.rules()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_steerer(method: str, direction: TraitDirection | Sequence[TraitDirection],
                 alpha: float = 1.0, **kwargs: Any) -> Steerer:
    """Build a steerer by rule name (see :mod:`lensteer.steering.registry`): ``"swfc"``,
    ``"sttp"``, ``"stmp"``, ``"ablate"``, or any rule registered since.

    >>> make_steerer("nope", None)
    Traceback (most recent call last):
    ...
    lensteer.steering.steerers.SteeringConfigError: Unknown steering method 'nope': choose from swfc, sttp, stmp, ablate.
    """
    try:
        cls = registry.get_rule(method)
    except KeyError:
        raise SteeringConfigError(
            f"Unknown steering method {method!r}: choose from {', '.join(registry.rule_names())}."
        ) from None
    return cls(direction, alpha, **kwargs)


class SteerHook:
    """One steerer at one hook point, callable as a TransformerLens hook ``fn(tensor, hook)``
    and, through :meth:`on_tensor`, as the body of a torch module hook (the fast path). It
    satisfies :class:`lensteer.runtime.SteeringHook`, which is how generation finds it on a
    model; positions come from the run-time seam (:mod:`lensteer.steering.positions`).

    ``rows``: the inputs (``BatchContext.indices``; batch rows when undeclared) it acts on —
    per-row steering; other rows pass through bit-identical. ``None``: every row.
    """

    lensteer_steering = True  # lets lensteer tell its own hooks from a user's

    def __init__(self, steerer: Steerer, rule: LayerRule, telemetry: Telemetry | None = None, *,
                 rows: Collection[int] | None = None) -> None:
        self.steerer = steerer
        self.rule = rule
        self.telemetry = telemetry
        self.rows = None if rows is None else frozenset(int(r) for r in rows)
        self.tracker = PositionTracker()
        self._warned = False

    @property
    def layer(self) -> int:
        return self.rule.layer

    @property
    def point(self) -> str:
        return self.rule.point

    def __call__(self, activation: Tensor, hook: Any = None) -> Tensor:
        return self.on_tensor(activation)

    def on_tensor(self, h: Float[Tensor, "batch pos d_model"]) -> Tensor:
        if h.dim() != 3:
            return h
        if self.rule.v_hat.device != h.device:  # move v̂ once, not at every step
            from dataclasses import replace

            self.rule = replace(self.rule, v_hat=self.rule.v_hat.to(h.device))
        call = self.tracker.step(h.shape[0], h.shape[1], h.device)
        if not call.declared and self.steerer.positions != "all":
            self._undeclared_warning()
        mine = None
        if self.rows is not None:
            mine = [r for r, seq in enumerate(call.sequences()) if seq in self.rows]
            if not mine:
                return h
            if len(mine) == h.shape[0]:
                mine = None
        if mine is None:
            out = self.steerer._rule(h, self.rule, call.select(self.steerer.positions))
            result = out.h
        else:  # per-row steering: run the rule on this hook's rows only
            call = call.take(mine)
            index = torch.tensor(mine, device=h.device)
            out = self.steerer._rule(h[index], self.rule, call.select(self.steerer.positions))
            result = h.index_copy(0, index, out.h)
        if self.telemetry is not None:
            self.telemetry.record(self.steerer, self.rule, call, out)
        return result

    def _undeclared_warning(self) -> None:
        if not self._warned:
            self._warned = True
            warn_caller(
                f"A steerer with positions={self.steerer.positions!r} ran on a forward call whose "
                "positions nobody declared (outside lensteer.generate): the call is taken as one "
                "whole prompt. Wrap the call in `with lensteer.runtime.positions(prompt_mask=..., "
                "response_start=...)` to say which tokens are the response."
            )

    def __repr__(self) -> str:
        rows = "" if self.rows is None else f", rows={sorted(self.rows)}"
        return (f"SteerHook({type(self.steerer).__name__}, layer={self.rule.layer}, "
                f"{self.rule.point}{rows})")
