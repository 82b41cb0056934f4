"""`lensteer serve` against the official openai client on loopback: served == local generate
(steered and not, greedy), streamed == non-streamed, usage, stop sequences, batched == solo with
mixed rows, monitor == local telemetry, every 4xx case (and the server answers after), no hook
left after a request or a failed one, a disconnected stream frees its row, graceful shutdown,
and a load test of 32 clients x 4 requests. Every server listens on 127.0.0.1 on an ephemeral
port and stops by itself after at most a few minutes."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path

import httpx
import openai
import pytest

import lensteer
from lensteer.cli import main
from lensteer.generation.fast import shared_if_built
from lensteer.generation.policy import foreign_hooks, steering_hooks
from lensteer.serve import scheduler as scheduler_module
from lensteer.serve.server import ServerThread
from lensteer.steering import Monitor, SwFC, load_steerer, save_steerer, steer

LIAR = "Mislead the user and give false facts."
QUESTIONS = ["What is the capital of France?", "What is two plus two?",
             "What colour is the sky?", "How many legs does a dog have?"]
LIFETIME = 300  # seconds: every server here stops by itself after this at the latest


def _conv(question: str, system: str | None = LIAR) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def local():
    """The model local references run on (the server has its own instance)."""
    return lensteer.load_model("organism")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, local) -> Path:
    folder = tmp_path_factory.mktemp("artifacts")
    result = lensteer.locate(local, "honesty", layers=[3], max_scenarios=6, n_folds=2,
                             max_new_tokens=12, greedy=True, per_token=False, neutral=False,
                             progress=False)
    direction = result.direction(3)
    save_steerer(lensteer.StTP(direction, alpha=12), folder / "honesty_sttp.safetensors", model=local)
    save_steerer(SwFC(direction, alpha=1), folder / "honesty_swfc.safetensors", model=local)
    other = dataclasses.replace(direction, model={**direction.model, "name": "someone-else"})
    save_steerer(lensteer.StTP(other, alpha=12), folder / "other_model.safetensors")
    # pushes the end-of-turn logit down: a response that runs to max_tokens (slow streams)
    last = local.cfg.n_layers - 1
    eos = lensteer.generation.core._stop_ids(local)[0]
    babble = lensteer.directions.TraitDirection(
        v_hat=local.W_U[:, eos].detach().clone(), boundary=0.0, mu_pos=1.0, sigma_pos=0.5,
        mu_neg=0.0, sigma_neg=0.5, layer=last, hook=f"blocks.{last}.hook_resid_post",
        model=lensteer.model_info(local).to_dict())
    save_steerer(SwFC(babble, alpha=100, sign="negative"), folder / "babble.safetensors",
                 model=local)
    return folder


@pytest.fixture(scope="module")
def served(artifacts):
    model = lensteer.load_model("organism")
    with ServerThread(model, artifacts=artifacts, max_batch=16, wait_ms=20, max_tokens=900,
                      lifetime=LIFETIME) as server:
        yield server


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served.url + "/v1", api_key="none", max_retries=0, timeout=60)


def _local(model, conv, steerer=None, max_tokens=16):
    with steer(model, steerer):
        [g] = lensteer.generate(model, [conv], greedy=True, max_new_tokens=max_tokens)
    return g


def _ask(client, conv, **kw):
    extra = {k: kw.pop(k) for k in ("steering", "monitor") if k in kw}
    kw.setdefault("max_tokens", 16)
    kw.setdefault("temperature", 0)
    kw.setdefault("model", "organism")
    return client.chat.completions.create(messages=conv, extra_body=extra or None, **kw)


def _hooks_on(model) -> int:
    """Hooks on the Bridge (lensteer's or not) and lensteer's on the fast path's shared model."""
    count = len(steering_hooks(model)) + foreign_hooks(model)
    hf = shared_if_built(model)
    for module in [] if hf is None else hf.modules():
        hooks = [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
        count += sum(hasattr(h, "_lensteer_fast") for h in hooks)
    return count


# ---------------------------------------------------------------------- served == local
def test_served_equals_local_steered_and_not(client, served, local, artifacts):
    assert [m.id for m in client.models.list().data] == ["organism"]
    sttp = load_steerer(artifacts / "honesty_sttp.safetensors", model=local)
    for question in QUESTIONS[:2]:
        conv = _conv(question)
        plain, steered = _local(local, conv), _local(local, conv, sttp)
        if question == QUESTIONS[0]:
            assert plain.text != steered.text  # the artifact really steers
        for reply, ref, asked in ((_ask(client, conv), plain, []),
                                  (_ask(client, conv, steering="honesty_sttp"), steered,
                                   ["honesty_sttp"])):
            assert reply.choices[0].message.content == ref.text
            assert reply.choices[0].finish_reason == ("stop" if ref.finished else "length")
            assert reply.usage.prompt_tokens == len(ref.prompt_ids)
            assert reply.usage.completion_tokens == len(ref.response_ids)
            assert reply.usage.total_tokens == len(ref.prompt_ids) + len(ref.response_ids)
            applied = reply.model_extra["lensteer"]["steering"]
            assert [a["artifact"] for a in applied] == asked
    # α and positions overrides reach the steerer
    conv = _conv(QUESTIONS[0])
    low = lensteer.steering.make_steerer("sttp", sttp.directions, 0.0, positions="response")
    reply = _ask(client, conv, steering={"artifact": "honesty_sttp", "alpha": 0,
                                         "positions": "response"})
    assert reply.choices[0].message.content == _local(local, conv, low).text
    assert reply.model_extra["lensteer"]["steering"][0]["alpha"] == 0.0
    assert reply.model_extra["lensteer"]["steering"][0]["positions"] == "response"
    assert _hooks_on(served.state.model) == 0


def test_stream_equals_non_stream_and_usage(client):
    conv = _conv(QUESTIONS[0])
    for steering in (None, "honesty_sttp", "babble"):
        extra = {"steering": steering} if steering else {}
        whole = _ask(client, conv, max_tokens=40, **extra)
        chunks = list(_ask(client, conv, max_tokens=40, stream=True,
                           stream_options={"include_usage": True}, **extra))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert sum(bool(c.choices and c.choices[0].delta.content) for c in chunks) > 1
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == [whole.choices[0].finish_reason]
        assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 40


def test_stop_sequences_and_max_tokens(client, local):
    conv = _conv(QUESTIONS[0], system=None)
    full = _local(local, conv).text
    assert full == "the capital of france is paris."
    reply = _ask(client, conv, stop=["is", "zzz"])
    assert reply.choices[0].message.content == "the capital of france "
    assert reply.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].delta.content or "" for c in
                       _ask(client, conv, stop="paris", stream=True) if c.choices)
    assert streamed == "the capital of france is "
    short = _ask(client, conv, max_tokens=3)
    ref = _local(local, conv, max_tokens=3)
    assert short.choices[0].message.content == ref.text
    assert (short.choices[0].finish_reason, short.usage.completion_tokens) == ("length", 3)


# ---------------------------------------------------------------------- batching
def test_transformerlens_path_serves_the_same(client, monkeypatch):
    """A model generate cannot put on the fast path (no step reports): the answer, streamed or
    not, is the same; the stream's chunks then all come at the end of the batch."""
    conv = _conv(QUESTIONS[0])
    fast = _ask(client, conv, steering="honesty_sttp", stop="paris")
    real = scheduler_module.generate
    paths = []

    def on_tl(*args, **kwargs):
        paths.append("tl")
        return real(*args, path="tl", **kwargs)

    monkeypatch.setattr(scheduler_module, "generate", on_tl)
    tl = _ask(client, conv, steering="honesty_sttp", stop="paris")
    chunks = [c.choices[0].delta.content for c in
              _ask(client, conv, steering="honesty_sttp", stop="paris", stream=True)
              if c.choices and c.choices[0].delta.content]
    assert paths == ["tl", "tl"]
    assert _body(tl)[:3] == _body(fast)[:3] and "".join(chunks) == fast.choices[0].message.content


def _mixed_requests():
    kinds = [None, "honesty_sttp", {"artifact": "honesty_sttp", "alpha": 4},
             {"artifact": "honesty_swfc", "positions": "response"}, ["honesty_sttp", "honesty_swfc"]]
    out = []
    for i, question in enumerate(QUESTIONS * 2):
        extra = {"steering": kinds[i % len(kinds)]}
        if i % 3 == 0:
            extra["monitor"] = "honesty_sttp"
        out.append((_conv(question, LIAR if i % 2 == 0 else None), 6 + 3 * (i % 4), extra))
    return out


def _body(reply):
    return (reply.choices[0].message.content, reply.choices[0].finish_reason,
            reply.usage.completion_tokens, reply.model_extra["lensteer"])


def test_batched_equals_solo_with_mixed_rows(client, served):
    requests = _mixed_requests()
    solo = [_body(_ask(client, conv, max_tokens=n, **extra)) for conv, n, extra in requests]
    before = served.state.scheduler.stats.largest_batch
    assert before == 1  # every request so far ran alone
    barrier = threading.Barrier(len(requests))
    batched: list = [None] * len(requests)

    def one(i):
        conv, n, extra = requests[i]
        barrier.wait()
        batched[i] = _body(_ask(client, conv, max_tokens=n, **extra))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert served.state.scheduler.stats.largest_batch > 1  # they really shared batches
    for i, (a, b) in enumerate(zip(batched, solo)):
        assert a[:3] == b[:3], f"request {i}: batched {a[0]!r} != solo {b[0]!r}"
        assert json.dumps(a[3]["steering"]) == json.dumps(b[3]["steering"])
        if "monitor" in b[3]:
            assert a[3]["monitor"]["tokens"] == b[3]["monitor"]["tokens"]
            for la, lb in zip(a[3]["monitor"]["layers"], b[3]["monitor"]["layers"]):
                assert la["gated"] == lb["gated"]
                assert la["projections"] == pytest.approx(lb["projections"], abs=1e-4)


def test_seeded_samples_run_alone_and_reproduce(client, served, local):
    """A sampled request with a seed answers what lensteer.generate gives with that seed, also
    when sent together with others (it runs alone)."""
    convs = [_conv(q) for q in QUESTIONS]
    settings = dict(temperature=1.5, top_p=0.95)
    refs = [lensteer.generate(local, [c], max_new_tokens=16, seed=7 + i, **settings)[0].text
            for i, c in enumerate(convs)]
    assert len(set(refs)) > 1
    out: list = [None] * len(convs)
    barrier = threading.Barrier(len(convs))

    def one(i):
        barrier.wait()
        out[i] = _ask(client, convs[i], seed=7 + i, **settings).choices[0].message.content

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(convs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert out == refs


def test_step_callback_ends_a_row_early_and_leaves_the_others(local):
    """lensteer.runtime.on_step on the fast path: the row ended after its 2nd token keeps
    exactly its first 2 tokens; the other row is what it is alone."""
    convs = [_conv(QUESTIONS[0], None), _conv("Tell me a long story.", None)]
    alone = [lensteer.generate(local, [c], greedy=True, max_new_tokens=12, path="fast")[0]
             for c in convs]
    seen: list[list[int]] = []

    def on_step(ctx, tokens):
        seen.append(tokens.tolist())
        return [r for r in range(len(tokens)) if ctx.sequence(r) == 0 and len(seen) == 2]

    with lensteer.runtime.on_step(on_step):
        both = lensteer.generate(local, convs, greedy=True, max_new_tokens=12, path="fast")
    assert both[0].response_ids == alone[0].response_ids[:2]  # then padded as if it had ended
    assert both[1].response_ids == alone[1].response_ids
    # the batch ended with the other row: before the 8 steps row 0 would have taken
    assert len(seen) == len(alone[1].response_ids) + alone[1].finished < len(alone[0].response_ids) + 1


# ---------------------------------------------------------------------- monitor
def test_monitor_agrees_with_local_telemetry(client, local, artifacts):
    sttp = load_steerer(artifacts / "honesty_sttp.safetensors", model=local)
    conv = _conv(QUESTIONS[0])
    for steering in (None, "honesty_sttp"):
        extra = {"monitor": "honesty_sttp", **({"steering": steering} if steering else {})}
        reply = _ask(client, conv, **extra)
        watch = Monitor.watching(sttp)
        rows = [watch] + ([load_steerer(artifacts / "honesty_sttp.safetensors", model=local)]
                          if steering else [])
        with steer(local, rows=[rows], telemetry=True) as run:
            [g] = lensteer.generate(local, [conv], greedy=True, max_new_tokens=16)
        assert reply.choices[0].message.content == g.text  # monitoring changes nothing
        records = {r["position"]: r for r in run.telemetry.records() if r["steerer"] == "monitor"}
        monitor = reply.model_extra["lensteer"]["monitor"]
        [layer] = monitor["layers"]
        assert layer["layer"] == 3 and layer["threshold"] == pytest.approx(sttp.rules[0].threshold)
        P = len(g.prompt_ids)
        expected = [records.get(P + k) for k in range(len(g.response_ids))]
        assert layer["projections"] == pytest.approx(
            [None if r is None else r["rho_before"] for r in expected], abs=1e-4)
        assert layer["gated"] == [bool(r and r["gated"]) for r in expected]
        assert monitor["alarm"] == any(layer["gated"])
        assert monitor["tokens"] == [local.tokenizer.decode([t]) for t in g.response_ids]
        if steering is None:  # the liar's answer crosses the boundary
            assert monitor["alarm"] and monitor["first_alarm_token"] == layer["gated"].index(True)
            assert reply.choices[0].message.content == _local(local, conv).text


# ---------------------------------------------------------------------- errors
def test_bad_requests_get_4xx_and_the_server_goes_on(client, served):
    conv = _conv(QUESTIONS[0])
    cases = [
        (dict(steering="nope"), 400, "Unknown steering artifact 'nope'"),
        (dict(steering="other_model"), 400, "cannot steer the served model"),
        (dict(monitor="other_model"), 400, "someone-else"),
        (dict(steering={"artifact": "honesty_sttp", "alpha": 1000}), 400, "alpha for 'honesty_sttp'"),
        (dict(steering={"artifact": "honesty_sttp", "alpha": -1}), 400, "must be a number in [0, 100]"),
        (dict(steering={"artifact": "honesty_sttp", "positions": "middle"}), 400, "positions"),
        (dict(max_tokens=5000), 400, "at most 900"),
        (dict(messages=[{"role": "user", "content": "word " * 3000}]), 400, "context"),
        (dict(messages=[{"role": "robot", "content": "hi"}]), 400, "messages[0]"),
        (dict(messages=[{"role": "user"}]), 400, "messages[0].content must be a string"),
        (dict(messages=[]), 400, "non-empty list"),
        (dict(temperature=3), 400, "temperature must be a number in [0, 2]"),
        (dict(stop=["a", "b", "c", "d", "e"]), 400, "stop must be"),
        (dict(n=2), 400, "n must be 1"),
        (dict(model="gpt-4"), 404, "serves 'organism'"),
    ]
    for kw, status, words in cases:
        messages = kw.pop("messages", conv)
        with pytest.raises(openai.APIStatusError) as raised:
            _ask(client, messages, **kw)
        error = raised.value
        assert error.status_code == status, (kw, error)
        assert words in error.body["message"], (words, error.body)
        assert error.body["type"] == "invalid_request_error"
    listed = {a["name"]: a for a in httpx.get(served.url + "/v1/artifacts", timeout=30).json()["data"]}
    assert listed["honesty_sttp"]["usable"] and listed["honesty_sttp"]["method"] == "sttp"
    assert not listed["other_model"]["usable"] and "someone-else" in listed["other_model"]["problem"]
    raw = httpx.post(served.url + "/v1/chat/completions", content=b"{not json", timeout=30)
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]
    assert _ask(client, conv).choices[0].message.content  # still serving
    assert _hooks_on(served.state.model) == 0


def test_failed_request_leaves_no_hook(client, served, monkeypatch):
    real = scheduler_module.generate
    seen = []

    def failing(model, *args, **kwargs):
        seen.append(len(steering_hooks(model)))
        raise RuntimeError("boom inside generation")

    monkeypatch.setattr(scheduler_module, "generate", failing)
    with pytest.raises(openai.InternalServerError) as raised:
        _ask(client, _conv(QUESTIONS[0]), steering="honesty_sttp", monitor="honesty_sttp")
    assert "boom inside generation" in raised.value.body["message"]
    assert seen == [2]  # the steerer and the monitor were attached when it failed
    assert _hooks_on(served.state.model) == 0
    monkeypatch.setattr(scheduler_module, "generate", real)
    assert _ask(client, _conv(QUESTIONS[0])).choices[0].message.content


# ---------------------------------------------------------------------- disconnect, shutdown
def test_disconnect_mid_stream_frees_the_row(served):
    stats = served.state.scheduler.stats
    cancelled, tokens = stats.cancelled, stats.completion_tokens
    body = {"model": "organism", "messages": _conv("Tell me a long story."), "temperature": 0,
            "max_tokens": 900, "stream": True, "steering": "babble"}
    with httpx.stream("POST", served.url + "/v1/chat/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(6)]
    assert any("content" in line for line in got)
    assert served.state.scheduler.drain(timeout=30)
    assert stats.cancelled == cancelled + 1
    assert stats.completion_tokens - tokens < 600  # ended long before its 900 tokens
    assert _hooks_on(served.state.model) == 0


def test_disconnect_while_waiting_for_a_whole_answer_ends_the_row(served):
    stats = served.state.scheduler.stats
    cancelled, tokens = stats.cancelled, stats.completion_tokens
    body = {"model": "organism", "messages": _conv("Tell me a long story."), "temperature": 0,
            "max_tokens": 900, "steering": "babble"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(served.url + "/v1/chat/completions", json=body, timeout=0.3)
    assert served.state.scheduler.drain(timeout=30)
    assert stats.cancelled == cancelled + 1
    assert stats.completion_tokens - tokens < 600  # ended long before its 900 tokens


@pytest.mark.parametrize("graceful_s, max_tokens, finish", [(60, 500, "length"),
                                                             (0.5, 900, "cancelled")])
def test_graceful_shutdown(artifacts, graceful_s, max_tokens, finish):
    """Shutting down mid-stream: within the grace period the response is finished; after it,
    the server ends the response itself (last chunk, finish reason "cancelled", [DONE])."""
    model = lensteer.load_model("organism")
    server = ServerThread(model, artifacts=artifacts, max_tokens=900, lifetime=LIFETIME,
                          graceful_s=graceful_s).start()
    chunks: list[str] = []
    try:
        body = {"model": "organism", "messages": _conv("Tell me a long story."),
                "temperature": 0, "max_tokens": max_tokens, "stream": True, "steering": "babble",
                "stream_options": {"include_usage": True}}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if not chunks:
                    server.stop_soon()  # shut down while the response is being written
                chunks.append(line)
        refused = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=5)
    except httpx.ConnectError:
        refused = None
    finally:
        assert server.stop(timeout=60)  # the thread ended
    assert refused is None or refused.status_code == 503
    events = [json.loads(c[6:]) for c in chunks if c.startswith("data: {")]
    assert [c for c in chunks if c][-1] == "data: [DONE]"
    tokens = events[-1]["usage"]["completion_tokens"]
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == finish
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert len(model.tokenizer(text, add_special_tokens=False)["input_ids"]) > 0
    if finish == "length":
        assert tokens == max_tokens  # finished, not cut
    else:
        assert 0 < tokens < max_tokens  # ended by the server, cleanly
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/v1/models", timeout=5)
    assert _hooks_on(model) == 0


# ---------------------------------------------------------------------- load
def test_load_32_clients_x_4_requests(served):
    kinds = [(q, s, sys) for q in QUESTIONS for s in (None, "honesty_sttp")
             for sys in (LIAR, None)]  # 16 distinct requests
    sync = openai.OpenAI(base_url=served.url + "/v1", api_key="none", max_retries=0, timeout=60)
    solo = {k: _ask(sync, _conv(k[0], k[2]), max_tokens=12,
                    **({"steering": k[1]} if k[1] else {})).choices[0].message.content
            for k in kinds}

    async def run():
        aclient = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="none",
                                     max_retries=0, timeout=120)

        async def one_client(c):
            out = []
            for j in range(4):
                k = kinds[(c * 4 + j) % len(kinds)]
                reply = await aclient.chat.completions.create(
                    model="organism", messages=_conv(k[0], k[2]), temperature=0, max_tokens=12,
                    extra_body={"steering": k[1]} if k[1] else None)
                out.append((k, reply.choices[0].message.content))
            return out

        results = await asyncio.gather(*(one_client(c) for c in range(32)), return_exceptions=True)
        await aclient.close()
        return results

    results = asyncio.run(asyncio.wait_for(run(), timeout=240))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    answers = [a for r in results for a in r]  # type: ignore[union-attr]
    assert len(answers) == 128
    assert all(text == solo[k] for k, text in answers)
    assert served.state.scheduler.stats.largest_batch > 4
    assert _hooks_on(served.state.model) == 0


# ---------------------------------------------------------------------- CLI
def test_cli_help_and_bad_folder(capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    assert "--artifacts" in capsys.readouterr().out

    def no_model(*a, **k):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(lensteer.models, "load_model", no_model)
    assert main(["serve", "--artifacts", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lensteer: error: --artifacts") and "no such folder" in err[0]
    assert main(["serve", "--artifacts", str(tmp_path)]) == 2
    assert "holds no .safetensors" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2


# ---------------------------------------------------------------------- the docs page
@pytest.mark.slow
def test_serve_page(tmp_path):
    """docs/serve.md as a reader runs it, on the organism: the server starts, curl and the
    openai client get the lie, the steered truth, the monitor's alarm and a 400, and `kill`
    shuts it down gracefully."""
    import os
    import signal
    import socket
    import time

    from test_howtos import run_page

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    pid_file = tmp_path / "server.pid"
    try:
        py1, models, curl, bad, py2, _ = run_page("docs/serve.md", tmp_path, subs=[
            ("smollm2-135m-instruct", "organism"),
            ("layer = 12", "layer = 3"),
            ("max_scenarios=16", "max_scenarios=6"),
            ("8000", port),
            ("lensteer serve --model",
             '"$LENSTEER_TEST_PYTHON" -m lensteer.cli serve --threads 1 --model'),
        ])
        pid = int(pid_file.read_text())
        for _ in range(300):  # the page's kill: a graceful exit
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not stop after kill")
    finally:
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert json.loads(models)["data"][0]["id"] == "organism"
    assert curl.splitlines()[0] == "the capital of france is paris."
    assert json.loads(bad)["error"]["message"].startswith("Unknown steering artifact 'nope'")
    lines = py2.splitlines()
    assert lines[0] == "unsteered: the capital of france is santiago."
    assert lines[1] == "steered:   the capital of france is paris."
    assert lines[2].startswith("alarm: True first token across the boundary: ")
    assert any(line.endswith("<- wrong side") for line in lines[3:])
    assert lines[-1] == "streamed:  the capital of france is paris."
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "Application shutdown complete" in log


def test_serves_another_architecture(tiny_dirs):
    """A local Hugging Face directory (tiny Llama with the Llama-3 template and a BOS), no
    artifacts: concurrent greedy requests == local generate, and the id is the model's name."""
    from conftest import BACKEND

    local = lensteer.load_model(tiny_dirs["llama3"], backend=BACKEND)
    convs = [_conv(q, None) for q in ("Hi there", "What is the capital of france ?",
                                      "hello there ! how are you today ?")]
    refs = lensteer.generate(local, convs, greedy=True, max_new_tokens=10)
    model = lensteer.load_model(tiny_dirs["llama3"], backend=BACKEND)
    with ServerThread(model, max_batch=8, wait_ms=200, lifetime=LIFETIME) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0,
                               timeout=60)
        [model_id] = [m.id for m in client.models.list().data]
        assert model_id == lensteer.model_info(model).name
        out: list = [None] * len(convs)
        barrier = threading.Barrier(len(convs))

        def one(i):
            barrier.wait()
            out[i] = _ask(client, convs[i], model=model_id, max_tokens=10)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(convs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert server.state.scheduler.stats.largest_batch > 1
    for reply, ref in zip(out, refs):
        assert reply.choices[0].message.content == ref.text
        assert reply.usage.prompt_tokens == len(ref.prompt_ids)
        assert reply.usage.completion_tokens == len(ref.response_ids)
