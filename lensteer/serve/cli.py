"""``lensteer serve``: an OpenAI-compatible chat server with per-request steering.

    $ lensteer serve --model organism --artifacts specs/ --port 8000
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

from ..cli_args import add_model_options, at_least, load_model_from_args, positive_int
from ..errors import UsageError


def _port(text: str) -> int:
    port = at_least(0)(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {port}")
    return port


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="serve a model over the OpenAI chat-completions API, with steering",
        description="Serve a model over the OpenAI chat-completions API (/v1/models, "
                    "/v1/chat/completions with streaming) with per-request steering and "
                    "monitoring by artifacts from --artifacts (docs/serve.md). Concurrent "
                    "requests are batched, each row with its own steering.")
    p.add_argument("--model", default="organism", help="bundled name, local directory or hub id")
    p.add_argument("--artifacts", default=None,
                   help="folder of steering specs (.safetensors from `lensteer steer "
                        "--save-spec`); a request names one by its file stem")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_port, default=8000,
                   help="port to listen on (0: any free one; uvicorn's log line says which)")
    p.add_argument("--model-id", default=None,
                   help="the model id clients send (default: the model's name)")
    p.add_argument("--max-batch", type=positive_int, default=16,
                   help="most requests decoded together (1: one at a time)")
    p.add_argument("--batch-wait-ms", type=_positive_float, default=5.0,
                   help="how long the first waiting request waits for others to join its batch")
    p.add_argument("--max-tokens", type=positive_int, default=256,
                   help="the largest max_tokens a request may ask for; also what a request "
                        "that sets none gets")
    p.add_argument("--max-alpha", type=_positive_float, default=100.0,
                   help="the largest α a request may set")
    p.add_argument("--graceful-s", type=_positive_float, default=30.0,
                   help="on shutdown (Ctrl-C), seconds in-flight requests get to finish")
    add_model_options(p)
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"lensteer serve needs {' and '.join(missing)}: pip install "
                         "'lensteer[serve]'.")
    from .artifacts import check_folder
    from .server import build_state, uvicorn_server

    if args.artifacts is not None:
        check_folder(args.artifacts)  # before the model loads
    model = load_model_from_args(args)
    state = build_state(model, artifacts=args.artifacts, model_id=args.model_id,
                        max_batch=args.max_batch, wait_ms=args.batch_wait_ms,
                        max_tokens=args.max_tokens, max_alpha=args.max_alpha)
    for entry in state.artifacts.describe():
        if not entry["usable"]:
            print(f"lensteer: warning: artifact {entry['name']!r} is not offered: "
                  f"{entry['problem']}", file=sys.stderr)
    print(f"lensteer serve: {state.model_id} on http://{args.host}:{args.port}/v1 "
          f"(artifacts: {', '.join(state.artifacts.names()) or 'none'}; batches of up to "
          f"{args.max_batch}); Ctrl-C stops it", file=sys.stderr)
    server = uvicorn_server(state, host=args.host, port=args.port, graceful_s=args.graceful_s,
                            log_level="info")
    server.run()
    return 0
