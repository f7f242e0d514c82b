"""The openai engine against a real local HTTP server that fakes an OpenAI-compatible one deterministically: it
answers with the last user message's words reversed (then `s{j}` for sample j), cut to `max_tokens` words, one
logprob per word; switches make it fail, stall or refuse, and it records bodies and concurrency."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rlvr.envs.tools.calls import parse_tool_calls
from rlvr.envs.types import Completion, Sampling
from rlvr.errors import ConfigError, RlvrError
from rlvr.trainer.engines.openai_engine import EngineError, OpenAIEngine

MODEL = "fake/model-1"


class FakeServer:
    """State and switches of the fake server (shared by its handler threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = 0  # answer the first K requests with 503
        self.stall_first = 0  # sleep `stall_s` before answering the first K requests
        self.stall_s = 0.0
        self.delay_s = 0.0  # sleep before every answer (to measure concurrency)
        self.status: int | None = None  # answer every request with this status
        self.ignore_n = False  # one choice whatever n asks (servers without n)
        self.in_flight = 0
        self.max_in_flight = 0
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        choices = []
        for j in range(1 if self.ignore_n else body.get("n", 1)):
            choices.append({"index": j, **self.choice(user, body, j)})
        choices.reverse()  # out of order on purpose: the engine sorts by index
        return {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"], "choices": choices}

    def choice(self, user: str, body: dict[str, Any], j: int) -> dict[str, Any]:
        if user.startswith("CALL") and body.get("tools"):
            call = {"id": f"c{j}", "type": "function", "function": {"name": "calc", "arguments": '{"x": 6}'}}
            message = {"role": "assistant", "content": "let me compute", "tool_calls": [call]}
            return {"message": message, "finish_reason": "tool_calls", "logprobs": None}
        if user.startswith("THINK"):
            message = {"role": "assistant", "content": "42", "reasoning_content": "hmm"}
            return {"message": message, "finish_reason": "stop"}
        words = [*reversed(user.split()), f"s{j}"]
        finish = "content_filter" if user == "FILTER" else "abort" if user == "ABORT" else "stop"
        for stop in body.get("stop", []):
            if stop in words:
                words = words[: words.index(stop)]
        if len(words) > body["max_tokens"]:
            words, finish = words[: body["max_tokens"]], "length"
        entries = [{"token": w, "logprob": -(k + 1) / 10, "top_logprobs": []} for k, w in enumerate(words)]
        if body.get("return_tokens_as_token_ids"):
            entries = [{**e, "token": f"token_id:{100 + k}"} for k, e in enumerate(entries)]
        return {
            "message": {"role": "assistant", "content": " ".join(words)},
            "finish_reason": finish,
            "logprobs": {"content": entries} if body.get("logprobs") else None,
        }


def make_handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def send_json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout test)

        def do_GET(self) -> None:
            if self.path == "/version":
                self.send_json(200, {"version": "0.99.1"})
            elif self.path == "/v1/models":
                entry = {"id": MODEL, "object": "model", "owned_by": "vllm", "root": "/ckpt/step-100"}
                self.send_json(200, {"object": "list", "data": [{"id": "other"}, entry]})
            else:
                self.send_json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.bodies.append(body)
                state.headers.append(dict(self.headers))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                failing = state.fail_first > 0
                state.fail_first -= failing
                stalling = state.stall_first > 0
                state.stall_first -= stalling
            try:
                time.sleep(state.delay_s + (state.stall_s if stalling else 0))
                if self.path != "/v1/chat/completions":
                    self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                elif failing:
                    self.send_json(503, {"object": "error", "message": "overloaded", "code": 503})
                elif state.status is not None:
                    message = "top_k must be -1 or >= 1, got 0"
                    self.send_json(
                        state.status, {"object": "error", "message": message, "code": state.status}
                    )
                else:
                    self.send_json(200, state.reply(body))
            finally:
                with state.lock:
                    state.in_flight -= 1

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    state.httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def engine(server: FakeServer, **options: Any) -> OpenAIEngine:
    options.setdefault("retry_backoff_s", 0.01)
    return OpenAIEngine(MODEL, base_url=server.url, **options)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "be terse"}, {"role": "user", "content": text}]


# -- generation ------------------------------------------------------------------------------------------------


def test_order_is_conversation_major_with_n(server: FakeServer) -> None:
    with engine(server, max_concurrency=4) as eng:
        out = eng.generate([user(f"q{i} a") for i in range(6)], Sampling(max_tokens=10), n=3)
    assert [c.text for c in out] == [f"a q{i} s{j}" for i in range(6) for j in range(3)]
    assert all(isinstance(c, Completion) and c.finish_reason == "stop" for c in out)
    assert len(server.bodies) == 6 and all(body["n"] == 3 for body in server.bodies)  # one request each


def test_logprobs_and_finish_reasons(server: FakeServer) -> None:
    with engine(server) as eng:
        out = eng.generate(
            [user("one two three four"), user("FILTER"), user("ABORT")], Sampling(max_tokens=3)
        )
        assert out[0].text == "four three two" and out[0].finish_reason == "length" and out[0].truncated
        assert out[0].logprobs == pytest.approx((-0.1, -0.2, -0.3))
        assert out[0].token_ids is None
        assert out[1].finish_reason == "stop"  # content_filter -> stop
        assert out[2].finish_reason == "abort"
        stopped = eng.generate([user("a b c")], Sampling(stop=("b",)))[0]
        assert stopped.text == "c" and stopped.finish_reason == "stop"
    with engine(server, logprobs=False) as eng:
        assert eng.generate([user("x")])[0].logprobs is None
    assert "logprobs" not in server.bodies[-1]


def test_token_ids_when_the_server_returns_them(server: FakeServer) -> None:
    with engine(server, extra_body={"return_tokens_as_token_ids": True}) as eng:
        out = eng.generate([user("a b")])[0]
    assert out.token_ids == (100, 101, 102) and out.logprobs == pytest.approx((-0.1, -0.2, -0.3))


def test_sampling_fields_and_headers_are_sent(server: FakeServer) -> None:
    sampling = Sampling(max_tokens=7, temperature=0.6, top_p=0.9, top_k=20, stop=("</answer>",), seed=11)
    with engine(server, api_key="sk-test", extra_body={"repetition_penalty": 1.1}) as eng:
        eng.generate([user("hi")], sampling, n=2)
        eng.generate([user("hi")], Sampling())
    sent, default = server.bodies
    assert sent["model"] == MODEL and sent["messages"] == user("hi")
    expected = {"n": 2, "max_tokens": 7, "temperature": 0.6, "top_p": 0.9, "top_k": 20, "seed": 11}
    assert {key: sent[key] for key in expected} == expected
    assert sent["stop"] == ["</answer>"] and sent["logprobs"] is True and sent["repetition_penalty"] == 1.1
    assert not {"top_k", "seed", "stop", "tools"} & default.keys()  # defaults are left to the server
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_each_conversation_gets_its_own_seeds(server: FakeServer) -> None:
    # Repeated conversations (a GRPO group, the evaluator's n samples) must not share a seed: request i carries
    # seed + i * n, and the server seeds its sample j with that + j.
    with engine(server, max_concurrency=1) as eng:
        eng.generate([user("x")] * 3, Sampling(seed=5), n=2)
    assert sorted(body["seed"] for body in server.bodies) == [5, 7, 9]


def test_api_key_defaults_to_the_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert engine(server).api_key == "sk-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert engine(server).api_key == "EMPTY"


def test_tool_calls_become_tags_the_tool_env_reads(server: FakeServer) -> None:
    schema = {"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}
    bare = {"name": "calc", "parameters": {"type": "object"}}
    with engine(server) as eng:
        out = eng.generate([user("CALL please"), user("CALL again")], tools=[[schema], [bare]])
    assert out[0].finish_reason == "tool_calls" and out[0].logprobs is None
    parsed = parse_tool_calls(out[0].text)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("calc", {"x": 6})]
    assert parsed.content == "let me compute"
    assert server.bodies[0]["tools"] == [schema] and server.bodies[1]["tools"] == [schema]


def test_assistant_tool_calls_are_sent_in_wire_form(server: FakeServer) -> None:
    tag = '<tool_call>{"name": "calc", "arguments": {"x": 6}}</tool_call>'
    call = {"id": "call_0_0", "type": "function", "function": {"name": "calc", "arguments": {"x": 6}}}
    conversation = [
        *user("CALL"),
        {
            "role": "assistant",
            "content": f"let me compute\n{tag}<tool_call>oops</tool_call>",
            "tool_calls": [call],
        },
        {"role": "tool", "tool_call_id": "call_0_0", "name": "calc", "content": "6"},
        {"role": "user", "content": "and now"},
    ]
    with engine(server) as eng:
        eng.generate([conversation])
    sent = server.bodies[0]["messages"][2]
    assert sent["content"] == "let me compute\n<tool_call>oops</tool_call>"  # the malformed attempt stays
    assert sent["tool_calls"][0]["function"]["arguments"] == '{"x": 6}'
    assert conversation[2]["tool_calls"][0]["function"]["arguments"] == {"x": 6}  # the input is not changed


def test_reasoning_is_kept_as_a_think_block(server: FakeServer) -> None:
    with engine(server) as eng:
        assert eng.generate([user("THINK")])[0].text == "<think>hmm</think>42"


# -- failures --------------------------------------------------------------------------------------------------


def test_503_is_retried_then_succeeds(server: FakeServer) -> None:
    server.fail_first = 2
    with engine(server, max_retries=3) as eng:
        assert eng.generate([user("b a")])[0].text == "a b s0"
    assert len(server.bodies) == 3


def test_retries_exhausted_raise_a_clear_error(server: FakeServer) -> None:
    server.fail_first = 10
    with engine(server, max_retries=2) as eng, pytest.raises(EngineError) as caught:
        eng.generate([user("x")])
    message = str(caught.value)
    assert isinstance(caught.value, RlvrError)
    assert "after 3 attempt(s)" in message and "HTTP 503: overloaded" in message
    assert f"vllm serve {MODEL}" in message and server.url in message
    assert len(server.bodies) == 3


def test_400_is_not_retried(server: FakeServer) -> None:
    server.status = 400
    with (
        engine(server, max_retries=3) as eng,
        pytest.raises(EngineError, match=r"HTTP 400: top_k must be") as c,
    ):
        eng.generate([user("x")])
    assert "top_k" in str(c.value) and len(server.bodies) == 1


def test_404_names_the_served_models(server: FakeServer) -> None:
    server.status = 404
    with engine(server) as eng, pytest.raises(EngineError, match=r"model= is a served model id"):
        eng.generate([user("x")])
    assert len(server.bodies) == 1


def test_a_server_that_ignores_n_is_reported(server: FakeServer) -> None:
    server.ignore_n = True
    with engine(server) as eng, pytest.raises(EngineError, match=r"n=2 choices and got 1.*use n=1"):
        eng.generate([user("x")], n=2)


def test_timeout_is_retried_then_succeeds(server: FakeServer) -> None:
    server.stall_first, server.stall_s = 1, 0.5
    with engine(server, timeout_s=0.2, max_retries=1) as eng:
        assert eng.generate([user("y")])[0].text == "y s0"
    assert len(server.bodies) == 2


def test_timeouts_exhausted_raise(server: FakeServer) -> None:
    server.stall_first, server.stall_s = 5, 0.5
    with engine(server, timeout_s=0.2, max_retries=1) as eng, pytest.raises(EngineError) as caught:
        eng.generate([user("y")])
    assert "after 2 attempt(s)" in str(caught.value) and "timeout_s=0.2" in str(caught.value)


def test_unreachable_server_raises_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    eng = OpenAIEngine(MODEL, base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, retry_backoff_s=0.01)
    with eng, pytest.raises(EngineError, match=r"after 2 attempt\(s\).*ConnectionRefusedError.*vllm serve"):
        eng.generate([user("x")])


def test_concurrency_is_bounded_and_reached(server: FakeServer) -> None:
    server.delay_s = 0.15
    with engine(server, max_concurrency=3) as eng:
        out = eng.generate([user(f"w{i}") for i in range(9)])
    assert [c.text for c in out] == [f"w{i} s0" for i in range(9)]
    assert server.max_in_flight == 3


# -- provenance, lifecycle, configuration ----------------------------------------------------------------------


def test_describe_reads_the_server(server: FakeServer) -> None:
    with engine(server) as eng:
        info = eng.describe()
    assert info["engine"] == "openai" and info["version"] == "0.99.1" and info["model"] == MODEL
    assert info["base_url"] == server.url
    assert info["served_model"] == {"id": MODEL, "root": "/ckpt/step-100", "owned_by": "vllm"}


def test_describe_never_raises_without_a_server() -> None:
    info = OpenAIEngine(MODEL, base_url="http://127.0.0.1:9/v1", timeout_s=0.5).describe()
    assert info == {"engine": "openai", "version": None, "model": MODEL, "base_url": "http://127.0.0.1:9/v1"}


def test_closed_engine_refuses_to_generate(server: FakeServer) -> None:
    eng = engine(server)
    eng.close()
    eng.close()  # twice is fine
    with pytest.raises(EngineError, match="closed"):
        eng.generate([user("x")])


def test_empty_batch_and_bad_arguments(server: FakeServer) -> None:
    with engine(server) as eng:
        assert eng.generate([]) == []
        with pytest.raises(ValueError, match="n"):
            eng.generate([user("x")], n=0)
        with pytest.raises(ValueError, match="tools has 1 entries for 2"):
            eng.generate([user("x"), user("y")], tools=[None])
    assert server.bodies == []


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "localhost:8000/v1"},
        {"max_concurrency": 0},
        {"timeout_s": 0},
        {"max_retries": -1},
        {"retry_backoff_s": -1},
        {"extra_body": ["n", 2]},
    ],
)
def test_bad_configuration_says_what_to_fix(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(options))):
        OpenAIEngine(MODEL, **options)
