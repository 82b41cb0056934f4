"""Generation: batched chat generation and the choice of path it runs on.

Hooks registered on the model (``model.hooks(...)``, ``lensteer.steer``) fire on every decoding
step, so steering works through :func:`generate` unchanged.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> [g] = lensteer.generate(model, ["What is the capital of France?"], greedy=True)
>>> g.text
'the capital of france is paris.'
>>> [lie] = lensteer.generate(model, ["What is the capital of France?"], greedy=True,
...                           system="Mislead the user and give false facts.")
>>> lie.text
'the capital of france is santiago.'

Modules: :mod:`.core` (``generate``, ``Generation``, ``left_pad``, ``pad_token_id``),
:mod:`.settings` (``GenSettings``), :mod:`.chat_session` (``ChatSession``: conversations
continued on their KV cache), :mod:`.forced` (teacher-forced log-probabilities of given
continuations, no generation), :mod:`.policy` (which path:
the TransformerLens model's ``generate`` or the fast path), :mod:`.tl` and :mod:`.fast` (the two
paths). Batch positions reach hooks through :mod:`lensteer.runtime`.
"""
from ..runtime import BatchContext, current_batch
from .chat_session import ChatSession
from .core import Generation, generate, left_pad, pad_token_id
from .policy import FastPathError, fast_path_reason
from .settings import GenSettings

__all__ = [
    "BatchContext",
    "ChatSession",
    "FastPathError",
    "GenSettings",
    "Generation",
    "current_batch",
    "fast_path_reason",
    "generate",
    "left_pad",
    "pad_token_id",
]
