"""Token telemetry: what each steering hook did to each token, cheaply and in bounded memory.

Off by default; ``lensteer.steer(model, steerers, telemetry=True)`` turns it on. Each hook call
stores a few small float32/bool vectors (never activations); tokens past ``max_tokens`` are
counted in the summaries but not kept as records. Pad tokens are never recorded, and with
:func:`lensteer.generate` neither are the tokens a row is fed after it has finished.

>>> import lensteer
>>> from lensteer.steering import StTP
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> d = result.direction(3)
>>> with lensteer.steer(model, StTP(d, alpha=6), telemetry=True) as run:
...     [g] = lensteer.generate(model, ["What is the capital of France?"], greedy=True,
...                             system="Mislead the user and give false facts.")
>>> [(r["steerer"], r["layer"], r["phase"], r["tokens"]) for r in run.telemetry.summary()]
[('sttp', 3, 'prompt', 21), ('sttp', 3, 'response', 7)]
>>> records = run.telemetry.records()
>>> len(records), sorted(records[0])  # doctest: +NORMALIZE_WHITESPACE
(28, ['batch', 'gated', 'layer', 'phase', 'point', 'position', 'rho_after', 'rho_before', 'row',
      'sequence', 'steerer', 'step'])

Gated tokens (ρ below the boundary m) land on the target μ⁺ + α σ⁺; the others are untouched:

>>> target = d.mu_pos + 6 * d.sigma_pos
>>> any(r["gated"] for r in records)
True
>>> all(abs(r["rho_after"] - target) < 1e-2 * abs(target) if r["gated"] else
...     r["rho_after"] == r["rho_before"] and r["rho_before"] >= d.boundary for r in records)
True

The HTML token strip has one span per response token:

>>> strip = run.telemetry.strip_html(g, model.tokenizer)
>>> strip.startswith("<div"), strip.count("<span") == len(g.input_ids) - len(g.prompt_ids)
(True, True)
"""
from __future__ import annotations

import contextlib
import html
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol

import torch

from .. import runtime
from ..errors import warn_caller
from ..generation import Generation
from .positions import CallInfo
from .rules import RuleOutput


class RecordedSteerer(Protocol):
    """What telemetry reads of a steerer (its rule's name)."""

    method: ClassVar[str]


class RecordedSite(Protocol):
    """What telemetry reads of a resolved rule: where it acts."""

    @property
    def layer(self) -> int: ...

    @property
    def point(self) -> str: ...


_FIELDS = ("sequence", "batch", "row", "step", "position", "layer", "rho_before", "rho_after", "gated")


class Telemetry:
    """Per-token records and running summaries of one steering session.

    Records (see :meth:`records`): ``steerer`` (method), ``layer``, ``point``, ``batch`` (batch
    counter), ``row`` (row in the batch), ``sequence`` (index of the conversation given to
    ``generate``, else the row), ``step`` (forward call, 0 = prefill), ``position`` (index in the
    row's own token list), ``phase`` (``"prompt"``/``"response"``), ``rho_before``, ``rho_after``,
    ``gated``.
    """

    def __init__(self, max_tokens: int = 200_000) -> None:
        self.max_tokens = int(max_tokens)
        self._chunks: list[dict[str, Any]] = []
        self._pending: dict[int, list[dict[str, Any]]] = defaultdict(list)  # by id(ctx)
        self._contexts: dict[int, runtime.BatchContext] = {}  # keeps each pending ctx (and id) alive
        self._stored = 0
        self.truncated = False
        # (method, layer, phase) -> [tokens, gated, sum|Δρ| over gated, sum|Δρ| over all]
        self._totals: dict[tuple[str, int, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
        # the same per input sequence: (sequence, method, layer, phase) -> [...]
        self._by_sequence: dict[tuple[int, str, int, str], list[float]] = defaultdict(
            lambda: [0, 0, 0.0, 0.0])

    # ------------------------------------------------------------------ recording
    @contextlib.contextmanager
    def recording(self) -> Iterator[Telemetry]:
        """Hear the end of every batch generated inside the block (so tokens fed after a row
        finished are dropped), then commit what is pending. ``lensteer.steer`` opens it; the
        callback is scoped to the block (:func:`lensteer.runtime.on_batch_end`)."""
        try:
            with runtime.on_batch_end(self._batch_end):
                yield self
        finally:
            self.flush()

    def record(self, steerer: RecordedSteerer, rule: RecordedSite, call: CallInfo,
               out: RuleOutput) -> None:
        """Store one hook call (its new, real tokens only)."""
        sl = slice(call.new_from, None)
        valid = call.valid[:, sl]
        rows, cols = valid.nonzero(as_tuple=True)
        positions = call.unpadded_positions()[:, sl]
        local_rows = rows.cpu()
        batch_rows = torch.tensor(call.row_ids, dtype=torch.long)[local_rows]
        sequence = torch.tensor(call.sequences(), dtype=torch.long)[local_rows]
        chunk = {
            "steerer": steerer.method,
            "layer": rule.layer,
            "point": rule.point,
            "batch": call.batch_index,
            "step": call.call,
            "row": batch_rows,
            "sequence": sequence,
            "position": positions[rows, cols].cpu(),
            "prompt": call.is_prompt[:, sl][rows, cols].cpu(),
            "rho_before": out.rho_before[:, sl][rows, cols].detach().float().cpu(),
            "rho_after": out.rho_after[:, sl][rows, cols].detach().float().cpu(),
            "gated": out.gated[:, sl][rows, cols].cpu(),
        }
        if call.ctx is not None:
            self._contexts[id(call.ctx)] = call.ctx
            self._pending[id(call.ctx)].append(chunk)
        else:
            self._commit(chunk)

    def _batch_end(self, ctx: runtime.BatchContext, lengths: Sequence[int]) -> None:
        """Called by ``generate`` after each batch with each row's prompt+response length."""
        limits = torch.tensor(list(lengths), dtype=torch.long)
        self._contexts.pop(id(ctx), None)
        for chunk in self._pending.pop(id(ctx), []):
            keep = chunk["position"] < limits[chunk["row"]]
            self._commit({k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in chunk.items()})

    def flush(self) -> None:
        """Commit records of batches that never reported their end (e.g. after an exception)."""
        for chunks in self._pending.values():
            for chunk in chunks:
                self._commit(chunk)
        self._pending.clear()
        self._contexts.clear()

    def _commit(self, chunk: dict[str, Any]) -> None:
        n = int(chunk["position"].numel())
        if n == 0:
            return
        delta = (chunk["rho_after"] - chunk["rho_before"]).abs()
        for phase, sel in (("prompt", chunk["prompt"]), ("response", ~chunk["prompt"])):
            count = int(sel.sum())
            if count:
                t = self._totals[(chunk["steerer"], chunk["layer"], phase)]
                gated = chunk["gated"] & sel
                t[0] += count
                t[1] += int(gated.sum())
                t[2] += float(delta[gated].sum())
                t[3] += float(delta[sel].sum())
                self._add_by_sequence(chunk, phase, sel, gated, delta)
        room = self.max_tokens - self._stored
        if room <= 0:
            self._truncate_warning()
            return
        if n > room:
            chunk = {k: v[:room] if isinstance(v, torch.Tensor) else v for k, v in chunk.items()}
            self._truncate_warning()
            n = room
        self._chunks.append(chunk)
        self._stored += n

    def _add_by_sequence(self, chunk: dict[str, Any], phase: str, sel: torch.Tensor,
                         gated: torch.Tensor, delta: torch.Tensor) -> None:
        seqs, inverse = torch.unique(chunk["sequence"][sel], return_inverse=True)
        d, g = delta[sel].double(), gated[sel].double()
        n = torch.bincount(inverse, minlength=len(seqs))
        counts = (n, torch.bincount(inverse, weights=g, minlength=len(seqs)),
                  torch.bincount(inverse, weights=d * g, minlength=len(seqs)),
                  torch.bincount(inverse, weights=d, minlength=len(seqs)))
        for k, seq in enumerate(seqs.tolist()):
            t = self._by_sequence[(seq, chunk["steerer"], chunk["layer"], phase)]
            for j in range(4):
                t[j] += counts[j][k].item()

    def _truncate_warning(self) -> None:
        if not self.truncated:
            self.truncated = True
            warn_caller(
                f"Telemetry keeps at most {self.max_tokens} token records; later tokens are only "
                "counted in the summaries. Raise max_tokens to keep more."
            )

    # ------------------------------------------------------------------ reading
    def records(self) -> list[dict[str, Any]]:
        """One dict per (token, layer) — a tidy table; see :meth:`to_frame` for pandas."""
        self.flush()
        out: list[dict[str, Any]] = []
        for c in self._chunks:
            columns = {k: c[k].tolist() for k in ("row", "sequence", "position", "prompt",
                                                   "rho_before", "rho_after", "gated")}
            for i in range(len(columns["position"])):
                out.append({
                    "steerer": c["steerer"],
                    "layer": c["layer"],
                    "point": c["point"],
                    "batch": c["batch"],
                    "row": columns["row"][i],
                    "sequence": columns["sequence"][i],
                    "step": c["step"],
                    "position": columns["position"][i],
                    "phase": "prompt" if columns["prompt"][i] else "response",
                    "rho_before": columns["rho_before"][i],
                    "rho_after": columns["rho_after"][i],
                    "gated": bool(columns["gated"][i]),
                })
        return out

    def to_frame(self) -> Any:
        """The records as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - pandas is optional
            raise ImportError("to_frame needs pandas; use records() for plain dicts.") from error
        return pd.DataFrame(self.records())

    def summary(self, *, by_sequence: bool = False) -> list[dict[str, Any]]:
        """Per steerer, layer and phase: tokens, gated tokens, gate rate, mean |Δρ| of gated
        tokens, and the mean L2 size of the intervention per token (= mean |Δρ|, v̂ is unit).

        ``by_sequence``: the same per input sequence (a ``sequence`` key first) — what each
        row of a per-row steered batch (``lensteer.steer(model, rows=...)``) got.
        """
        self.flush()
        rows = []
        totals: dict[Any, list[float]] = self._by_sequence if by_sequence else self._totals
        for key, (n, g, dg, da) in sorted(totals.items()):
            method, layer, phase = key[-3:]
            rows.append({
                **({"sequence": key[0]} if by_sequence else {}),
                "steerer": method,
                "layer": layer,
                "phase": phase,
                "tokens": int(n),
                "gated": int(g),
                "gate_rate": g / n if n else 0.0,
                "mean_abs_delta_gated": dg / g if g else 0.0,
                "mean_l2_per_token": da / n if n else 0.0,
            })
        return rows

    def summary_text(self) -> str:
        """The summary as an aligned text table."""
        lines = [f"{'steerer':<8} {'layer':>5} {'phase':<9} {'tokens':>7} {'gated':>6} "
                 f"{'rate':>6} {'|Δρ| gated':>10} {'L2/token':>9}"]
        for r in self.summary():
            lines.append(
                f"{r['steerer']:<8} {r['layer']:>5} {r['phase']:<9} {r['tokens']:>7} "
                f"{r['gated']:>6} {r['gate_rate']:>6.1%} {r['mean_abs_delta_gated']:>10.3f} "
                f"{r['mean_l2_per_token']:>9.3f}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ token strips
    def token_rows(
        self, generation: Generation, tokenizer: Any, *, layer: int | None = None, sequence: int = 0,
        include_prompt: bool = False,
    ) -> list[dict[str, Any]]:
        """The response's tokens (optionally the prompt's too) with ρ before/after and gate."""
        recs = [r for r in self.records() if r["sequence"] == sequence
                and (layer is None or r["layer"] == layer)]
        if layer is None and recs:
            layer = recs[0]["layer"]
            recs = [r for r in recs if r["layer"] == layer]
        by_pos = {r["position"]: r for r in recs}
        ids = generation.input_ids
        first = 0 if include_prompt else len(generation.prompt_ids)
        out = []
        for pos in range(first, len(ids)):
            r = by_pos.get(pos)
            out.append({
                "position": pos,
                "token": tokenizer.decode([ids[pos]]),
                "rho_before": None if r is None else r["rho_before"],
                "rho_after": None if r is None else r["rho_after"],
                "gated": False if r is None else r["gated"],
            })
        return out

    def strip_html(self, generation: Generation, tokenizer: Any, **kwargs: Any) -> str:
        """The token strip as HTML: background = ρ before steering (blue high, red low), gated
        tokens underlined in bold, ρ before → after in each token's tooltip."""
        rows = self.token_rows(generation, tokenizer, **kwargs)
        values = [r["rho_before"] for r in rows if r["rho_before"] is not None]
        scale = max((abs(v) for v in values), default=1.0) or 1.0
        spans = []
        for r in rows:
            text = html.escape(r["token"]).replace("\n", "⏎")
            if r["rho_before"] is None:
                spans.append(f'<span style="padding:1px">{text}</span>')
                continue
            x = max(-1.0, min(1.0, r["rho_before"] / scale))
            color = (f"rgba(33,102,172,{abs(x):.2f})" if x >= 0 else f"rgba(178,24,43,{abs(x):.2f})")
            gate = "border-bottom:2px solid black;font-weight:bold;" if r["gated"] else ""
            title = f"ρ {r['rho_before']:.3f} → {r['rho_after']:.3f}" + (" (gated)" if r["gated"] else "")
            spans.append(f'<span title="{html.escape(title)}" style="background:{color};{gate}'
                         f'padding:1px;margin:0 1px">{text}</span>')
        return ('<div style="font-family:monospace;line-height:1.9">' + "".join(spans) + "</div>")

    def strip_figure(self, generation: Generation, tokenizer: Any, *, per_line: int = 16, **kwargs: Any) -> Any:
        """The token strip as a matplotlib figure (colour = ρ before; gated tokens boxed)."""
        import matplotlib.pyplot as plt

        rows = self.token_rows(generation, tokenizer, **kwargs)
        values = [r["rho_before"] for r in rows if r["rho_before"] is not None]
        scale = max((abs(v) for v in values), default=1.0) or 1.0
        n_lines = max(1, -(-len(rows) // per_line))
        fig, ax = plt.subplots(figsize=(per_line * 0.75, 0.5 * n_lines + 0.6))
        cmap = plt.get_cmap("RdBu")
        for i, r in enumerate(rows):
            x, y = i % per_line, -(i // per_line)
            value = 0.0 if r["rho_before"] is None else r["rho_before"] / scale
            label = "".join(c if c.isprintable() else "·" for c in r["token"].replace("\n", "⏎"))
            ax.text(
                x, y, label or "·", ha="center", va="center", fontsize=8,
                fontweight="bold" if r["gated"] else "normal",
                bbox=dict(facecolor=cmap(0.5 + 0.5 * value), edgecolor="black" if r["gated"] else "none",
                          boxstyle="round,pad=0.2"),
            )
        ax.set_xlim(-0.7, per_line - 0.3)
        ax.set_ylim(-n_lines + 0.4, 0.6)
        ax.axis("off")
        ax.set_title("ρ before steering (blue = aligned side); boxed = gated", fontsize=9)
        fig.tight_layout()
        return fig
