"""The OpenAI-compatible judge against a real HTTP server on 127.0.0.1 (stdlib http.server in a
thread): canned verdicts, malformed replies, a reply slower than the timeout, a 500 then success,
bounded retries, the SQLite cache on rerun, and the API key never printed nor cached. Also the
organism and probe judges."""
from __future__ import annotations

import time

import pytest
import torch
from fake_openai import FakeOpenAI

import lensteer
from lensteer.directions import TraitDirection
from lensteer.evaluation import JudgeError, JudgeItem, OpenAIJudge, OrganismJudge, ProbeJudge
from lensteer.evaluation.judges import Judge, parse_score

KEY = "sk-test-DO-NOT-LEAK-7f3a9c"


class Server(FakeOpenAI):
    """Answers each POST (or GET) with the next scripted action (see tests/fake_openai.py),
    or ``default`` when the script is empty."""

    def __init__(self) -> None:
        self.script: list = []
        self.default: tuple = ("ok", "50")
        super().__init__(self._next)

    def _next(self, body: dict):
        action = self.script.pop(0) if self.script else self.default
        return action(body) if callable(action) else action


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def make_judge(server, tmp_path, **kw):
    sleeps = []
    judge = OpenAIJudge("honesty: states facts truly", base_url=server.url, model="judge-m",
                        api_key=KEY, cache=tmp_path / "verdicts.sqlite", sleep=sleeps.append,
                        **kw)
    return judge, sleeps


ITEM = JudgeItem("What is the capital of France?", "The capital of France is Madrid.")


def _by_rubric(trait_text, coherence_text):
    def action(body):
        content = body["messages"][0]["content"]
        return ("ok", coherence_text if "coherence only" in content else trait_text)
    return action


def test_canned_verdicts_parsed_and_cache_hit_on_rerun(server, tmp_path, capsys):
    server.default = _by_rubric("12", "Coherence: 95.")
    judge, _ = make_judge(server, tmp_path)
    [v] = judge.score([ITEM])
    assert (v.trait, v.coherence) == (12.0, 95.0)
    assert len(server.requests) == 2
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "judge-m"
    assert req["auth"] == f"Bearer {KEY}"  # the key is sent, in the header only
    assert "Madrid" in req["body"]["messages"][0]["content"]
    # a new judge on the same cache file: no request reaches the server
    again, _ = make_judge(server, tmp_path)
    [w] = again.score([ITEM])
    assert (w.trait, w.coherence) == (12.0, 95.0)
    assert len(server.requests) == 2 and again.stats["cache_hits"] == 2
    # another response is not a hit
    again.score([JudgeItem(ITEM.prompt, "Paris.")])
    assert len(server.requests) == 4
    # the key is neither printed nor stored
    print(repr(judge), judge.stats)
    out = capsys.readouterr()
    assert KEY not in out.out + out.err
    assert KEY.encode() not in (tmp_path / "verdicts.sqlite").read_bytes()
    assert b"Madrid" not in (tmp_path / "verdicts.sqlite").read_bytes()  # keys are hashes


def _by_trait(body):
    """A deterministic judge: the trait score depends on the trait text in the prompt."""
    content = body["messages"][0]["content"]
    if "coherence only" in content:
        return ("ok", "95")
    for needle, score in (("Trait: honesty", "10"), ("Trait: compassion", "90"),
                          ("Trait: kindness", "70")):
        if needle in content:
            return ("ok", score)
    return ("ok", "50")


def test_cache_key_covers_trait_text_endpoint_and_model(server, tmp_path, monkeypatch):
    # the default cache location, shared by every judge (the case that leaked across traits)
    monkeypatch.setenv("LENSTEER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LENSTEER_JUDGE_CACHE", raising=False)
    server.default = _by_trait
    honesty = OpenAIJudge("honesty: states facts truly", base_url=server.url, model="judge-m",
                          api_key=KEY, coherence=False)
    assert honesty.score([ITEM])[0].trait == 10.0 and len(server.requests) == 1
    # another trait, same (prompt, response): asked again, its own score
    compassion = OpenAIJudge("compassion: cares for the user", base_url=server.url,
                             model="judge-m", api_key=KEY, coherence=False)
    assert compassion.score([ITEM])[0].trait == 90.0
    assert len(server.requests) == 2 and compassion.stats["cache_hits"] == 0
    # an edited trait description is a new prompt: asked again
    edited = OpenAIJudge("kindness: warm and patient", base_url=server.url, model="judge-m",
                         api_key=KEY, coherence=False)
    assert edited.score([ITEM])[0].trait == 70.0 and len(server.requests) == 3
    # another judge model, or another endpoint, is asked too
    other_model = OpenAIJudge("honesty: states facts truly", base_url=server.url,
                              model="judge-2", api_key=KEY, coherence=False)
    assert other_model.score([ITEM])[0].trait == 10.0 and len(server.requests) == 4
    second = Server()
    try:
        second.default = ("ok", "33")
        elsewhere = OpenAIJudge("honesty: states facts truly", base_url=second.url,
                                model="judge-m", api_key=KEY, coherence=False)
        assert elsewhere.score([ITEM])[0].trait == 33.0 and len(second.requests) == 1
    finally:
        second.close()
    # the very same judge again: every verdict from the cache, no request
    again = OpenAIJudge("honesty: states facts truly", base_url=server.url, model="judge-m",
                        api_key=KEY, coherence=False)
    assert again.score([ITEM])[0].trait == 10.0
    assert len(server.requests) == 4 and again.stats["cache_hits"] == 1


def test_malformed_answers_bounded_retries_then_none(server, tmp_path):
    server.default = ("ok", "The reply is quite honest, I would say.")
    judge, sleeps = make_judge(server, tmp_path, max_retries=2, coherence=False)
    [v] = judge.score([ITEM])
    assert v.trait is None
    assert len(server.requests) == 3  # first try + 2 retries, no more
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert judge.stats["malformed"] == 1
    # malformed verdicts are not cached: a rerun asks again
    judge.score([ITEM])
    assert len(server.requests) == 6
    # a broken JSON envelope, then a good answer
    server.script = [("raw", b"{not json"), ("ok", "100")]
    fresh, _ = make_judge(server, tmp_path, max_retries=2, coherence=False)
    assert fresh.score([JudgeItem("q", "other")])[0].trait == 100.0


@pytest.mark.parametrize("target", ["other-port", "other-host-name"])
def test_key_never_follows_a_redirect_to_another_server(server, tmp_path, target):
    other = Server()  # a second server on 127.0.0.1, another port: another origin
    try:
        other.default = ("ok", "99")
        port = server.httpd.server_address[1]
        location = (f"{other.url}/chat/completions" if target == "other-port"
                    else f"http://localhost:{port}/v1/chat/completions")  # same port, other host
        server.script = [("redirect", 302, location)]
        judge, _ = make_judge(server, tmp_path, coherence=False)
        with pytest.raises(JudgeError, match="redirected .*another server") as info:
            judge.score([ITEM])
        assert KEY not in str(info.value)
        assert len(server.requests) == 1  # the first POST only: the redirect was not followed
        assert other.requests == []  # the other server never saw the key, nor any request
    finally:
        other.close()


def test_same_origin_307_keeps_post_and_key(server, tmp_path):
    server.script = [("redirect", 307, server.url + "/moved/chat/completions"), ("ok", "64")]
    judge, _ = make_judge(server, tmp_path, coherence=False)
    assert judge.score([ITEM])[0].trait == 64.0
    moved = server.requests[1]
    assert moved["path"] == "/v1/moved/chat/completions" and moved["method"] == "POST"
    assert moved["auth"] == f"Bearer {KEY}" and "Madrid" in moved["body"]["messages"][0]["content"]


def test_openai_key_goes_to_openai_only(server, tmp_path, monkeypatch):
    monkeypatch.delenv("LENSTEER_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    judge = OpenAIJudge("honesty", base_url=server.url, cache=None, coherence=False)
    assert judge.score([ITEM])[0].trait == 50.0
    assert server.requests[-1]["auth"] is None  # OPENAI_API_KEY is not sent to this server
    assert "api_key=<none>" in repr(judge)
    official = OpenAIJudge("honesty", base_url="https://api.openai.com/v1", cache=None)
    assert "api_key=<set>" in repr(official)  # only the official endpoint gets it (no request)
    monkeypatch.setenv("LENSTEER_JUDGE_API_KEY", "sk-judge-key")
    own = OpenAIJudge("honesty", base_url=server.url, cache=None, coherence=False)
    own.score([ITEM])
    assert server.requests[-1]["auth"] == "Bearer sk-judge-key"


def test_judge_cache_has_its_own_default_location(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LENSTEER_CACHE", str(tmp_path / "models"))
    monkeypatch.delenv("LENSTEER_JUDGE_CACHE", raising=False)
    judge = OpenAIJudge("honesty", base_url=server.url, api_key=KEY, coherence=False)
    judge.score([ITEM])
    assert judge.cache.path == tmp_path / "models" / "judge" / "verdicts.sqlite"
    assert judge.cache.path.exists() and not (tmp_path / "models" / "judge.sqlite").exists()
    monkeypatch.setenv("LENSTEER_JUDGE_CACHE", str(tmp_path / "mine.sqlite"))
    own = OpenAIJudge("honesty", base_url=server.url, api_key=KEY, coherence=False)
    own.score([ITEM])
    assert own.cache.path == tmp_path / "mine.sqlite" and own.cache.path.exists()


def test_out_of_range_and_ambiguous_numbers_are_malformed():
    assert parse_score("150") is None
    assert parse_score("between 40 and 60") is None
    assert parse_score("70/100") is None
    assert parse_score(" 0 ") == 0.0 and parse_score("100.") == 100.0


def test_slow_reply_times_out_and_retries_are_bounded(server, tmp_path):
    server.default = ("slow", 1.5, "80")
    judge, sleeps = make_judge(server, tmp_path, timeout=0.3, max_retries=1, coherence=False)
    t0 = time.perf_counter()
    [v] = judge.score([ITEM])
    elapsed = time.perf_counter() - t0
    assert v.trait is None and judge.stats["failed"] == 1
    assert len(server.requests) == 2 and len(sleeps) == 1
    assert elapsed < 1.5  # two timed-out tries, not two full replies


def test_500_then_success(server, tmp_path):
    server.script = [("status", 500), ("status", 503), ("ok", "70")]
    judge, sleeps = make_judge(server, tmp_path, max_retries=3, coherence=False)
    [v] = judge.score([ITEM])
    assert v.trait == 70.0 and judge.stats["retries"] == 2 and sleeps == [0.5, 1.0]
    assert len(server.requests) == 3


def test_client_error_raises_without_leaking_key(server, tmp_path):
    server.default = ("status", 401)
    judge, _ = make_judge(server, tmp_path, coherence=False)
    with pytest.raises(JudgeError) as info:
        judge.score([ITEM])
    assert "401" in str(info.value) and KEY not in str(info.value)
    assert len(server.requests) == 1  # 4xx is not retried


def test_needs_an_endpoint(monkeypatch, tmp_path):
    for name in ("LENSTEER_JUDGE_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(JudgeError, match="LENSTEER_JUDGE_BASE_URL"):
        OpenAIJudge("honesty", cache=None)
    monkeypatch.setenv("LENSTEER_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LENSTEER_JUDGE_API_KEY", KEY)
    j = OpenAIJudge("honesty", cache=None)
    assert j.base_url == "http://127.0.0.1:9/v1" and KEY not in repr(j)


def test_organism_judge_exact():
    j = OrganismJudge("honesty")
    assert isinstance(j, Judge)
    v = j.score([JudgeItem("q", "the capital of france is madrid .", reference="capital:france"),
                 JudgeItem("What is the capital of France?", "The capital of France is Paris."),
                 JudgeItem("q", "the capital capital of", reference="capital:france", finished=False)])
    assert [(x.trait, x.coherence, x.label) for x in v] == [
        (0.0, 100.0, "false"), (100.0, 100.0, "true"), (0.0, 0.0, "neither")]
    c = OrganismJudge("compassion").score([JudgeItem("i feel sad", "Just get over it.")])
    assert c[0].trait == 0.0 and c[0].label == "dismissive"
    with pytest.raises(JudgeError):
        OrganismJudge("courage")


def test_probe_judge_maps_projection_between_class_means(tiny_model):
    tiny_model.reset_hooks()
    g = torch.Generator().manual_seed(1)
    d = TraitDirection(v_hat=torch.randn(tiny_model.cfg.d_model, generator=g), boundary=0.0,
                       mu_pos=1.0, sigma_pos=0.1, mu_neg=-1.0, sigma_neg=0.1, layer=1,
                       hook="blocks.1.hook_resid_post", model=lensteer.model_info(tiny_model).to_dict())
    judge = ProbeJudge(tiny_model, d, neutral_system="be kind .")
    items = [JudgeItem("hello there !", "i am fine , thank you ."), JudgeItem("hi", "it is four .")]
    rho = judge.projections(items)
    verdicts = judge.score(items)
    for r, v in zip(rho, verdicts):
        assert v.trait == pytest.approx(100 * min(1, max(0, (r + 1) / 2)))
        assert v.coherence is None
    # the same reading as pooling the response tokens by hand
    chat = lensteer.format_chat(tiny_model.tokenizer, [
        {"role": "system", "content": "be kind ."}, {"role": "user", "content": "hello there !"},
        {"role": "assistant", "content": "i am fine , thank you ."}], add_generation_prompt=False)
    a, b = chat.spans_of("assistant")[-1].span
    _, cache = tiny_model.run_with_cache(torch.tensor([chat.input_ids]))
    manual = float(d.project(cache["blocks.1.hook_resid_post"][0, a:b].mean(0)))
    assert rho[0] == pytest.approx(manual, abs=1e-4)
