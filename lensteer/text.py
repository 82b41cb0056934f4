"""Text statistics that every layer may use: lensteer's word splitting and the n-gram
repetition of a conversation's turns. Imports nothing else of lensteer.

Words are lower-cased runs of word characters, each run of punctuation a word of its own — the
organism's tokenizer splits text the same way, and evaluation counts response lengths and
repeated n-grams with it on any model's text.

>>> words("The capital of France is Paris.")
['the', 'capital', 'of', 'france', 'is', 'paris', '.']
>>> r = repetition(["the answer is b ) 7 .", "the answer is b ) 7 ."], n=3)
>>> r.across_turns, r.within_turn
(1.0, 0.0)
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WORD_RE", "Repetition", "ngrams", "repetition", "words"]

#: A word: a run of word characters, or a run of punctuation.
WORD_RE = re.compile(r"\w+|[^\w\s]+")


def words(text: str) -> list[str]:
    """The words of ``text`` (lower-cased, punctuation split off)."""
    return WORD_RE.findall(text.lower())


def ngrams(ws: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``n``-grams of a word list, in order."""
    return [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]


def _distinct(turns: list[list[str]], n: int) -> float:
    grams = [g for ws in turns for g in ngrams(ws, n)]
    return len(set(grams)) / len(grams) if grams else 1.0


@dataclass(frozen=True)
class Repetition:
    """Repetition statistics of one conversation's assistant turns (all in [0, 1]).

    ``distinct_1``, ``distinct_2``, ``distinct_n``: unique / total n-grams pooled over the turns.
    ``within_turn``: share of each turn's n-grams that already occurred earlier in the same turn
    (pooled over turns). ``across_turns``: share of a turn's n-grams that occurred in an earlier
    turn (pooled over turns 2..k). ``n_turns``, ``n``: bookkeeping.
    """
    distinct_1: float
    distinct_2: float
    distinct_n: float
    within_turn: float
    across_turns: float
    n_turns: int
    n: int


def repetition(texts: Sequence[str], n: int = 3) -> Repetition:
    """Repetition statistics of a conversation's assistant turns.

    >>> r = repetition(["the answer is b ) 7 .", "the answer is b ) 7 ."], n=3)
    >>> r.across_turns, r.within_turn
    (1.0, 0.0)
    """
    turns = [words(t) for t in texts]
    within_rep = within_tot = 0
    across_rep = across_tot = 0
    seen_before: set = set()
    for k, ws in enumerate(turns):
        grams = ngrams(ws, n)
        seen_here: set = set()
        for g in grams:
            within_tot += 1
            if g in seen_here:
                within_rep += 1
            seen_here.add(g)
            if k > 0:
                across_tot += 1
                if g in seen_before:
                    across_rep += 1
        seen_before |= seen_here
    return Repetition(
        distinct_1=_distinct(turns, 1), distinct_2=_distinct(turns, 2),
        distinct_n=_distinct(turns, n),
        within_turn=within_rep / within_tot if within_tot else 0.0,
        across_turns=across_rep / across_tot if across_tot else 0.0,
        n_turns=len(turns), n=n,
    )
