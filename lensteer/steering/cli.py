"""``lensteer steer`` and ``lensteer export``.

    $ lensteer steer --model organism --direction honesty_L1.safetensors --method sttp \\
          --alpha 12 --system "Always lie." "What is the capital of France?"
    $ lensteer export --format vllm-steer --spec honesty_sttp.safetensors --out payloads/
"""
from __future__ import annotations

import argparse
import textwrap
from typing import Any

from ..cli_args import (
    add_model_options,
    finite_float,
    layer_spec,
    load_model_from_args,
    positive_int,
)
from . import registry


def add_parser(sub: Any) -> None:
    p = sub.add_parser("steer", help="compare a model's unsteered and steered responses")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--model", default="organism", help="bundled name, local directory or hub id")
    p.add_argument("--direction", required=True, help="a TraitDirection .safetensors file")
    p.add_argument("--method", default="sttp", help=f"one of {', '.join(registry.rule_names())}")
    p.add_argument("--alpha", type=finite_float, default=1.0, help="the rule's coefficient (>= 0)")
    p.add_argument("--sign", default="positive", help="positive (toward aligned) or negative")
    p.add_argument("--positions", default="all", help="all, response or prompt")
    p.add_argument("--threshold", default="boundary", help="boundary or a percentile like p10")
    p.add_argument("--calibration", default="response", help="response or token")
    p.add_argument("--layers", type=layer_spec, default=None,
                   help="steer these layers, e.g. '3' or '1-3' (default: the direction's)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-new-tokens", type=positive_int, default=48, help="response length limit")
    p.add_argument("--sample", action="store_true", help="sample (T=0.6, top-p 0.9) instead of greedy")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--no-strict", action="store_true", help="allow a direction from another model")
    p.add_argument("--save-spec", default=None, help="also write the steering spec here")
    add_model_options(p)
    p.set_defaults(func=_cmd_steer)

    p = sub.add_parser("export", help="export a steering spec for serving, verified")
    p.add_argument("--format", required=True, choices=["vllm-steer", "llamacpp"],
                   help="vllm-steer: the paper's vLLM fork (StTP/StMP); llamacpp: a control "
                        "vector GGUF (SwFC)")
    p.add_argument("--spec", required=True, help="a steering spec .safetensors file")
    p.add_argument("--out", required=True,
                   help="vllm-steer: output folder (replaced as a whole once every payload is "
                        "written); llamacpp: the .gguf file")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check that the exported file does what lensteer's hooks do "
                        "(it loads the model the spec records)")
    p.add_argument("--model", default=None,
                   help="the model to verify on (default: the one the spec records)")
    add_model_options(p)
    p.set_defaults(func=_cmd_export)


def _cmd_steer(args: argparse.Namespace) -> int:
    from ..directions import TraitDirection
    from ..generation import generate
    from ..layers import parse_layers
    from ..outdir import check_out_file
    from .session import steer
    from .spec import save_steerer
    from .steerers import make_steerer

    # everything that needs no model first: the file, the rule's settings, the spec path
    if args.save_spec:
        check_out_file(args.save_spec, "--save-spec")
    direction = TraitDirection.load(args.direction)
    kwargs: dict[str, Any] = dict(
        sign=args.sign, threshold=args.threshold, calibration=args.calibration,
        positions=args.positions,
    )
    steerer = make_steerer(args.method, direction, args.alpha, **kwargs)
    model = load_model_from_args(args)
    strict = not args.no_strict
    direction.check_model(model, strict=strict)
    if args.layers:
        kwargs["layers"] = parse_layers(args.layers, int(model.cfg.n_layers))
        steerer = make_steerer(args.method, direction, args.alpha, **kwargs)
    steerer.check_model(model, strict=strict)
    gen = dict(system=args.system, max_new_tokens=args.max_new_tokens, greedy=not args.sample,
               seed=args.seed)
    [plain] = generate(model, [args.prompt], **gen)
    with steer(model, steerer, telemetry=True, strict=strict) as run:
        [steered] = generate(model, [args.prompt], **gen)
    width = 48
    left = textwrap.wrap(plain.text, width) or [""]
    right = textwrap.wrap(steered.text, width) or [""]
    print(f"{steerer!r}")
    print(f"{'unsteered':<{width}}   {'steered'}")
    print(f"{'-' * width}   {'-' * width}")
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        print(f"{a:<{width}}   {b}")
    print()
    assert run.telemetry is not None
    print(run.telemetry.summary_text())
    if args.save_spec:
        save_steerer(steerer, args.save_spec, model=model)
        print(f"\nsteering spec written to {args.save_spec}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..outdir import check_out, check_out_file, lock_out, staged_dir, write_marker
    from .conformance import ExportVerificationError, verify_control_vector, verify_vllm
    from .llamacpp import control_vectors, write_control_vector
    from .spec import SpecMismatchError, export_vllm, load_steerer, vllm_payloads

    llamacpp = args.format == "llamacpp"
    out = check_out_file(args.out, "--out") if llamacpp else check_out(args.out, "export")
    steerer = load_steerer(args.spec)
    # refuses rules, sites and positions the format cannot serve, before writing anything
    check_format = control_vectors if llamacpp else vllm_payloads
    check_format(steerer)
    identity = dict(steerer.directions[0].model)
    model = None
    if not args.no_verify:
        recorded = identity.get("name") if identity.get("source") in ("bundled", "hub") else (
            identity.get("path") or identity.get("name"))
        if not (args.model or recorded):
            raise SpecMismatchError(
                f"{args.spec} records no model to verify the export on: pass --model NAME_OR_DIR, "
                "or --no-verify to export without the check."
            )
        model = load_model_from_args(args, args.model or recorded)
        steerer.check_model(model)
    if llamacpp:
        from ..io import atomic_path

        with atomic_path(out) as tmp:  # verified before it takes the name --out
            write_control_vector(steerer, tmp, model_hint=str(identity.get("name", "")),
                                 n_layers=int(identity.get("n_layers") or 0), model=identity)
            if model is not None:
                report = verify_control_vector(tmp, steerer, model)
                if not report.ok:
                    raise ExportVerificationError(
                        f"The control vector's forward pass differs from lensteer's SwFC hooks "
                        f"by {report.max_abs_diff:.3g} (tolerance {report.tolerance:.1g}); not "
                        "exported."
                    )
        paths = [out]
    else:
        if model is not None:
            report = verify_vllm(steerer, vllm_payloads(steerer), model)
            if not report.ok:  # nothing written: the payloads would mean something else
                raise ExportVerificationError(
                    f"The vllm-steer payloads differ from lensteer's hooks by "
                    f"{report.max_abs_diff:.3g} (tolerance {report.tolerance:.1g}); not exported."
                )
        with lock_out(out), staged_dir(out) as tmp:
            paths = export_vllm(steerer, tmp)
            write_marker(tmp, "export")
        paths = [out / p.name for p in paths]
    for path in paths:
        print(path)
    if model is None:
        print("not verified (--no-verify)")
    else:
        print(f"verified: max |difference| {report.max_abs_diff:.2g} over "
              f"{sum(report.checked.values())} tokens at layer(s) {', '.join(report.checked)}")
    print(f"{len(paths)} file(s) written" + ("" if llamacpp else f" to {out}"))
    return 0
