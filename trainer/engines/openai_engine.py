"""The `openai` engine: generation through an OpenAI-compatible chat-completions server (`vllm serve`, SGLang,
llama.cpp's server, the OpenAI API), for benchmarking a served checkpoint. Standard library only.

One request per conversation asks for all `n` samples (`"n": n`); with a seed, conversation i's request carries
`seed + i * n` and vLLM seeds its sample `j` with that + j, so every sample of a call has its own seed (seed + r,
conversation-major, as the `vllm` engine does): samples differ, also when a conversation is repeated (a GRPO group,
the evaluator's n samples), and repeat from run to run. Requests run on a thread pool of `max_concurrency`
workers; connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff
(`retry_backoff_s * 2**attempt`), other 4xx are not.

The reply's text is the generation as the model wrote it, rebuilt from the parsed fields: reasoning
(`reasoning_content`) as `<think>...</think>`, then the content, then each tool call as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the Hermes form `rlvr.envs.tools` reads). Going the
other way, an assistant message carrying `tool_calls` is sent with `arguments` as a JSON string and the call tags
taken out of its content, so the server's chat template renders each call once. Token ids are returned only when
the server gives them (vLLM: `extra_body={"return_token_ids": True}` or `{"return_tokens_as_token_ids": True}`);
`prompt_token_ids` and `episode_ids` are ignored (chat completions take messages).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rlvr.envs.types import Completion, Message, Sampling
from rlvr.errors import ConfigError, RlvrError

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # OpenAI's legacy name
    "abort": "abort",
}
"""Server finish reasons kept; any other (`content_filter`, `eos`, None, ...) reads as "stop"."""

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try (any other 5xx is retried too)."""

HINTS = {
    400: "the server rejected a field of the request: drop what it does not support (top_k, seed, logprobs=False "
    "for servers without logprobs) or fix extra_body",
    401: "pass api_key= or set OPENAI_API_KEY to the key the server expects (vllm serve --api-key)",
    403: "pass api_key= or set OPENAI_API_KEY to a key allowed to use this model",
    404: "check that model= is a served model id (GET {base_url}/models) and that base_url ends in /v1",
    422: "the server could not read the request: check the messages, tools and extra_body",
}
_MAX_RETRY_AFTER_S = 60.0
_ERROR_BODY_CHARS = 1000
_DESCRIBE_TIMEOUT_S = 10.0
_TOKEN_ID = re.compile(r"token_id:(\d+)\Z")
_CALL_TAG = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


class EngineError(RlvrError):
    """The server could not be reached, refused a request, or answered in a form that cannot be read."""


class OpenAIEngine:
    """Generates through `POST {base_url}/chat/completions`."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 600,
        max_retries: int = 3,
        retry_backoff_s: float = 1.0,
        logprobs: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be the served model id (a non-empty str), got {model!r}")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be an integer >= 1, got {max_concurrency!r}")
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not retry_backoff_s >= 0:
            raise ConfigError(f"retry_backoff_s must be >= 0 seconds, got {retry_backoff_s!r}")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ConfigError(f"extra_body must be a dict of request fields, got {type(extra_body).__name__}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.retry_backoff_s = float(retry_backoff_s)
        self.logprobs = bool(logprobs)
        self.extra_body = dict(extra_body or {})
        self._opener = urllib.request.build_opener()  # proxies read from the environment once, here
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_concurrency, "openai-engine")
        self._lock = threading.Lock()

    # -- the engine protocol ---------------------------------------------------------------------------------

    def generate(
        self,
        conversations: Sequence[list[Message]],
        sampling: Sampling | None = None,
        *,
        tools: Sequence[list[dict[str, Any]] | None] | None = None,
        prompt_token_ids: Sequence[list[int]] | None = None,
        episode_ids: Sequence[int] | None = None,
        n: int = 1,
    ) -> list[Completion]:
        """`len(conversations) * n` completions, conversation-major (the `n` samples of conversation 0 first)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n (samples per conversation) must be an integer >= 1, got {n!r}")
        if tools is not None and len(tools) != len(conversations):
            raise ValueError(
                f"tools has {len(tools)} entries for {len(conversations)} conversations; give one each"
            )
        sampling = sampling or Sampling()
        with self._lock:
            if self._pool is None:
                raise EngineError("this OpenAIEngine is closed; make a new one to generate again")
            futures = [
                self._pool.submit(
                    self._complete,
                    conversation,
                    _offset_seed(sampling, i * n),
                    tools[i] if tools else None,
                    n,
                )
                for i, conversation in enumerate(conversations)
            ]
        return _gather(futures)

    def describe(self) -> dict[str, Any]:
        """Provenance: the server's version (vLLM's `GET /version`) and the served model's entry in
        `GET {base_url}/models` (its `root` is the checkpoint the server loaded). Never raises: what the server
        does not tell is None."""
        info: dict[str, Any] = {
            "engine": self.name,
            "version": None,
            "model": self.model,
            "base_url": self.base_url,
        }
        root_url = self.base_url.removesuffix("/v1")
        version = self._get_quietly(f"{root_url}/version")
        if isinstance(version, dict) and version.get("version") is not None:
            info["version"] = str(version["version"])
        models = self._get_quietly(f"{self.base_url}/models")
        entries = models.get("data") if isinstance(models, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                info["served_model"] = {
                    key: entry[key] for key in ("id", "root", "owned_by", "max_model_len") if key in entry
                }
                break
        return info

    def close(self) -> None:
        """Stop the worker threads; requests not yet started are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one conversation ------------------------------------------------------------------------------------

    def _complete(
        self, conversation: list[Message], sampling: Sampling, tools: list[dict[str, Any]] | None, n: int
    ) -> list[Completion]:
        body = self._request_body(conversation, sampling, tools, n)
        reply = self._post("/chat/completions", body)
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or len(choices) != n:
            got = len(choices) if isinstance(choices, list) else "no"
            raise EngineError(
                f"asked {self.base_url}/chat/completions for n={n} choices and got {got}; this server may not "
                f"support n>1 (vllm serve does): use n=1 or another server. Reply: {_snippet(reply)}"
            )
        choices = sorted(
            choices, key=lambda choice: choice.get("index", 0) if isinstance(choice, dict) else 0
        )
        return [self._completion(choice) for choice in choices]

    def _request_body(
        self, conversation: list[Message], sampling: Sampling, tools: list[dict[str, Any]] | None, n: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(message) for message in conversation],
            "n": n,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.top_k != -1:
            body["top_k"] = sampling.top_k  # not OpenAI's API; vLLM and SGLang read it from the body
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.logprobs:
            body["logprobs"] = True
        if tools:
            body["tools"] = [_wire_tool(tool) for tool in tools]
        body.update(self.extra_body)  # last, so extra_body can override any field
        return body

    def _completion(self, choice: Any) -> Completion:
        if not isinstance(choice, dict):
            raise EngineError(
                f"{self.base_url}/chat/completions returned a choice that is not an object: {choice!r}"
            )
        message = choice.get("message")
        text = _reply_text(message if isinstance(message, dict) else {})
        logprob_block = choice.get("logprobs")
        entries = logprob_block.get("content") if self.logprobs and isinstance(logprob_block, dict) else None
        logprobs = None
        if isinstance(entries, list) and all(
            isinstance(e, dict) and e.get("logprob") is not None for e in entries
        ):
            logprobs = tuple(float(entry["logprob"]) for entry in entries)
        token_ids = _token_ids(choice, entries)
        reason = choice.get("finish_reason")
        finish_reason = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
        return Completion(text=text, token_ids=token_ids, logprobs=logprobs, finish_reason=finish_reason)

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        """The decoded JSON reply; retried on connection errors, timeouts, 429 and 5xx."""
        url = f"{self.base_url}{path}"
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        attempts = self.max_retries + 1
        last_error = ""
        for attempt in range(attempts):
            wait_s = self.retry_backoff_s * 2**attempt  # exponential backoff
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                message = _error_message(exc)
                if exc.code not in RETRY_STATUS and exc.code < 500:
                    hint = HINTS.get(exc.code, "check the request against the server's API").format(
                        base_url=self.base_url
                    )
                    raise EngineError(
                        f"{url} refused the request with HTTP {exc.code}: {message}; {hint}"
                    ) from exc
                last_error = f"HTTP {exc.code}: {message}"
                wait_s = max(wait_s, _retry_after_s(exc))
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                if isinstance(reason, TimeoutError):
                    last_error = f"no reply within timeout_s={self.timeout_s:g} s"
                else:
                    last_error = f"{type(reason).__name__}: {reason}"
            else:
                try:
                    return json.loads(raw)
                except ValueError as exc:
                    raise EngineError(
                        f"{url} answered with something that is not JSON ({exc}): {raw[:200]!r}; is base_url "
                        f"the OpenAI-compatible API root (ending in /v1)?"
                    ) from None
            if attempt + 1 < attempts:
                time.sleep(wait_s)
        raise EngineError(
            f"{url} failed after {attempts} attempt(s); last error: {last_error}. Check the server: is "
            f"`vllm serve {self.model}` running and reachable at {self.base_url}? Raise timeout_s or max_retries "
            f"if it is just slow or busy."
        )

    def _get_quietly(self, url: str) -> Any:
        """The JSON at `url`, or None on any failure (one attempt, short timeout)."""
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.api_key}"})
        try:
            with self._opener.open(request, timeout=min(self.timeout_s, _DESCRIBE_TIMEOUT_S)) as response:
                return json.loads(response.read())
        except (OSError, ValueError, http.client.HTTPException):
            return None


# -- helpers ---------------------------------------------------------------------------------------------------


def _gather(futures: list[Future[list[Completion]]]) -> list[Completion]:
    """The futures' results in order, flattened; on the first error, cancel what has not started and raise."""
    completions: list[Completion] = []
    try:
        for future in futures:
            completions.extend(future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return completions


def _wire_message(message: Message) -> Message:
    """An assistant message with `tool_calls` as the API expects it: `arguments` a JSON string, and the call tags
    that the calls stand for taken out of the content (the server's template renders the calls)."""
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not calls:
        return message
    wire_calls = []
    for call in calls:
        function = dict(call.get("function") or {})
        if not isinstance(function.get("arguments"), str):
            function["arguments"] = json.dumps(function.get("arguments") or {})
        wire_calls.append({**call, "type": call.get("type", "function"), "function": function})
    content = message.get("content")
    if isinstance(content, str):
        content = _CALL_TAG.sub(
            lambda match: "" if _is_call(match.group(1)) else match.group(0), content
        ).strip()
    return {**message, "content": content, "tool_calls": wire_calls}


def _is_call(body: str) -> bool:
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("name"), str)


def _wire_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool schema in the OpenAI envelope `{"type": "function", "function": {...}}` (bare schemas are wrapped)."""
    return tool if "function" in tool else {"type": "function", "function": tool}


def _reply_text(message: dict[str, Any]) -> str:
    """`<think>reasoning</think>` + content + one `<tool_call>` tag per call: the generation as written."""
    text = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        text = f"<think>{reasoning}</think>{text}"
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                pass  # kept as the string the model wrote; the environment reports it as malformed
        tag = (
            "<tool_call>"
            + json.dumps({"name": function.get("name"), "arguments": arguments})
            + "</tool_call>"
        )
        text += ("\n" if text and not text.endswith("\n") else "") + tag
    return text


def _offset_seed(sampling: Sampling, offset: int) -> Sampling:
    """`sampling` with its seed moved by `offset` (unseeded sampling stays unseeded)."""
    if sampling.seed is None or offset == 0:
        return sampling
    return dataclasses.replace(sampling, seed=sampling.seed + offset)


def _token_ids(choice: dict[str, Any], entries: Any) -> tuple[int, ...] | None:
    """Generated token ids when the server gives them: `choice["token_ids"]` (vLLM `return_token_ids`) or
    logprob tokens spelled `token_id:123` (vLLM `return_tokens_as_token_ids`)."""
    ids = choice.get("token_ids")
    if isinstance(ids, list) and all(isinstance(i, int) for i in ids):
        return tuple(ids)
    if isinstance(entries, list) and entries:
        matches = [_TOKEN_ID.match(str(entry.get("token", ""))) for entry in entries]
        if all(matches):
            return tuple(int(match.group(1)) for match in matches)
    return None


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The server's error message: OpenAI's `{"error": {"message"}}`, vLLM's `{"message"}`, or the raw body."""
    try:
        raw = exc.read()[:_ERROR_BODY_CHARS].decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return exc.reason if isinstance(exc.reason, str) else str(exc)
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.strip() or str(exc.reason)
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return raw.strip()


def _retry_after_s(exc: urllib.error.HTTPError) -> float:
    """The server's `Retry-After` in seconds (capped), or 0."""
    try:
        return min(float(exc.headers.get("Retry-After", 0)), _MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return 0.0


def _snippet(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:300] + "..."
