"""The steering rules as pure functions on activations (docs/concepts.md, *The steering rules*).

Every rule takes a residual-stream tensor ``h`` of any float dtype, a unit direction ``v_hat``
and a boolean ``mask`` of the tokens it may touch, and returns a :class:`RuleOutput`: the new
activations (same dtype), the projections before and after, and which tokens were changed.
Projections and edits are computed in float32 and cast back; tokens that are not changed come
out bit-identical, and only the component along ``v_hat`` ever moves (the edit is rank one).

``sign=+1`` pushes toward the aligned side (the paper's use); ``sign=-1`` is the mirror image.

>>> import torch
>>> h = torch.tensor([[[-1.0, 5.0], [3.0, 5.0]]])             # two tokens, ρ = -1 and 3
>>> v = torch.tensor([1.0, 0.0])
>>> out = to_target(h, v, torch.ones(1, 2, dtype=torch.bool), threshold=0.0, target=2.0)
>>> out.h.tolist(), out.gated.tolist()
([[[2.0, 5.0], [3.0, 5.0]]], [[True, False]])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..directions import project  # the one projection, ⟨h, v̂⟩ in float32


@dataclass
class RuleOutput:
    """What a rule did: new activations, projections before/after (float32), changed tokens."""

    h: Float[Tensor, "batch pos d_model"]
    rho_before: Float[Tensor, "batch pos"]
    rho_after: Float[Tensor, "batch pos"]
    gated: Bool[Tensor, "batch pos"]


def move(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    rho: Float[Tensor, "batch pos"],
    rho_new: Float[Tensor, "batch pos"],
    gated: Bool[Tensor, "batch pos"],
) -> RuleOutput:
    """Move gated tokens along v̂ from ``rho`` to ``rho_new``; leave the others untouched
    (bit-identical). Every rule ends here; a new rule computes ``rho_new`` and its gate."""
    v = v_hat.to(device=h.device, dtype=torch.float32)
    delta = torch.where(gated, rho_new - rho, torch.zeros_like(rho))
    moved = (h.to(torch.float32) + delta.unsqueeze(-1) * v).to(h.dtype)
    out = torch.where(gated.unsqueeze(-1), moved, h)
    rho_after = torch.where(gated, rho_new, rho)
    return RuleOutput(out, rho, rho_after, gated)


def gate(
    rho: Float[Tensor, "batch pos"], mask: Bool[Tensor, "batch pos"], threshold: float, sign: int
) -> Bool[Tensor, "batch pos"]:
    """Tokens on the wrong side of ``threshold``: ``ρ < m`` (``sign=+1``) or ``ρ > m`` (``-1``);
    a token exactly on the threshold is never gated."""
    return mask & (rho * sign < float(threshold) * sign)


def shift(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    mask: Bool[Tensor, "batch pos"],
    *,
    amount: float,
) -> RuleOutput:
    """SwFC: every masked token moves by ``amount`` along v̂ (``amount = ±α·Δμ``)."""
    rho = project(h, v_hat)
    return move(h, v_hat, rho, rho + float(amount), mask)


def to_target(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    mask: Bool[Tensor, "batch pos"],
    *,
    threshold: float,
    target: float,
    sign: int = 1,
) -> RuleOutput:
    """StTP: tokens on the wrong side of ``threshold`` are put exactly at ``target``.

    ``sign=+1`` gates ``ρ < threshold``; ``sign=-1`` gates ``ρ > threshold``.
    """
    rho = project(h, v_hat)
    return move(h, v_hat, rho, torch.full_like(rho, float(target)), gate(rho, mask, threshold, sign))


def mirror(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    mask: Bool[Tensor, "batch pos"],
    *,
    threshold: float,
    coefficient: float,
    cap: float,
    sign: int = 1,
) -> RuleOutput:
    """StMP: gated tokens get ``ρ' = ρ + α(2m − 2ρ)``, capped at ``cap`` (``ρ' ≤ cap`` for
    ``sign=+1``, ``ρ' ≥ cap`` for ``sign=-1``)."""
    rho = project(h, v_hat)
    rho_new = rho + float(coefficient) * (2.0 * float(threshold) - 2.0 * rho)
    rho_new = torch.clamp(rho_new, max=float(cap)) if sign > 0 else torch.clamp(rho_new, min=float(cap))
    return move(h, v_hat, rho, rho_new, gate(rho, mask, threshold, sign))


def ablate(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    mask: Bool[Tensor, "batch pos"],
) -> RuleOutput:
    """Directional ablation: ``h' = h − ρ v̂`` on every masked token."""
    rho = project(h, v_hat)
    return move(h, v_hat, rho, torch.zeros_like(rho), mask)


def observe(
    h: Float[Tensor, "batch pos d_model"],
    v_hat: Float[Tensor, " d_model"],
    mask: Bool[Tensor, "batch pos"],
    *,
    threshold: float,
    sign: int = 1,
) -> RuleOutput:
    """Monitoring, no steering: ``h`` comes back as it is (the very tensor); ``gated`` marks the
    tokens on the wrong side of ``threshold`` — those a gated rule would move.

    >>> out = observe(torch.tensor([[[-1.0, 5.0], [3.0, 5.0]]]), torch.tensor([1.0, 0.0]),
    ...               torch.ones(1, 2, dtype=torch.bool), threshold=0.0)
    >>> out.rho_before.tolist(), out.gated.tolist()
    ([[-1.0, 3.0]], [[True, False]])
    """
    rho = project(h, v_hat)
    return RuleOutput(h, rho, rho, gate(rho, mask, threshold, sign))
