"""``lensteer serve``: the OpenAI chat-completions API over a lensteer model, with per-request
steering and monitoring (docs/serve.md).

Modules: :mod:`.protocol` (the wire format: request checking, errors, response bodies, streamed
text), :mod:`.artifacts` (the steering specs a server offers), :mod:`.scheduler` (one worker
thread batching requests into per-row steered generation), :mod:`.app` (FastAPI routes),
:mod:`.server` (uvicorn, in the foreground or a bounded background thread), :mod:`.cli`.
FastAPI and uvicorn come with the ``serve`` extra (``pip install 'lensteer[serve]'``).
"""
from .artifacts import ArtifactStore
from .protocol import RequestError
from .scheduler import Job, JobResult, Scheduler

__all__ = ["ArtifactStore", "Job", "JobResult", "RequestError", "Scheduler"]
