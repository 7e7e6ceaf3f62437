"""A local model server speaking OpenAI chat-completions and Anthropic messages, scripted.

Each model call takes the next script item:

* ``call("click", ref=3)`` or a list of calls, or a ``str`` (a text-only reply);
* a function of the latest observation text (the last user message) returning one of those;
* ``Raw(status, body, headers)``: an HTTP error or any raw answer (429, 500, ...);
* ``BadArgs("navigate", "{not json")``: a tool call whose arguments are not JSON.

Every request body is kept (``server.bodies``) so tests can check what reached the "provider".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aesoperator.models import ToolCall
from serving import running


@dataclass
class Raw:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BadArgs:
    tool: str
    raw: str


@dataclass
class Usage:
    input_tokens: int
    output_tokens: int


Item = Any


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Item] = []
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.usage: Usage | None = None  # fixed usage per reply, else estimated
        # "bytes": bill like the most expensive tokenizer, one token per UTF-8 byte of every
        # string sent (plus 4 per message) and of the reply, the reply cut at the max tokens
        # the request allows, as providers do.
        self.tokenizer = "chars/4"
        self.lock = threading.Lock()
        self.model = "gpt-4.1-mini"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self, script: list[Item]) -> None:
        with self.lock:
            self.script = list(script)
            self.bodies.clear()
            self.paths.clear()
            self.usage = None
            self.tokenizer = "chars/4"

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for b in self.bodies]

    def everything(self) -> str:
        with self.lock:
            return b"\n".join(self.bodies).decode("utf-8", "replace")


def last_user_text(body: dict[str, Any], anthropic: bool) -> str:
    for msg in reversed(body.get("messages", [])):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content if b.get("type") == "text"]
        if texts:
            return "\n".join(texts)
    return ""


def _string_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(_string_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_string_bytes(v) for v in value)
    return 0


def billed_bytes(body: dict[str, Any], text: str, calls: list[Any]) -> Usage:
    """A worst-case tokenizer: one token per UTF-8 byte, the reply capped as asked."""
    prompt = _string_bytes(body) + 4 * len(body.get("messages", []))
    reply = len(text.encode("utf-8")) + sum(
        len(json.dumps(c.arguments if isinstance(c, ToolCall) else c.raw, ensure_ascii=False)
            .encode("utf-8"))
        for c in calls
    )  # fmt: skip
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    return Usage(prompt, min(reply, cap) if cap else reply)


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        srv = self.server
        with srv.lock:
            srv.bodies.append(raw)
            srv.paths.append(self.path)
            item = srv.script.pop(0) if srv.script else Raw(500, {"error": "script ended"})
        anthropic = self.path.endswith("/messages")
        body = json.loads(raw)
        if callable(item):
            try:
                item = item(last_user_text(body, anthropic))
            except Exception as exc:  # a broken script step shows up as the provider's error
                item = Raw(400, {"error": {"message": f"script step failed: {exc!r}"}})
        if isinstance(item, Raw):
            payload = item.body if item.body is not None else {"error": {"message": "error"}}
            self._reply(item.status, payload, item.headers)
            return
        calls: list[ToolCall | BadArgs] = []
        text = ""
        if isinstance(item, str):
            text = item
        else:
            calls = list(item) if isinstance(item, list) else [item]
        usage = srv.usage or Usage(len(raw) // 4, 20)
        if srv.tokenizer == "bytes":
            usage = billed_bytes(body, text, calls)
        if anthropic:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for i, c in enumerate(calls):
                args = c.arguments if isinstance(c, ToolCall) else {"raw": c.raw}
                name = c.name if isinstance(c, ToolCall) else c.tool
                blocks.append({"type": "tool_use", "id": f"toolu_{len(srv.bodies)}_{i}",
                               "name": name, "input": args})  # fmt: skip
            self._reply(200, {
                "id": f"msg_{len(srv.bodies)}", "type": "message", "role": "assistant",
                "model": body.get("model"), "content": blocks,
                "stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": usage.input_tokens,
                          "output_tokens": usage.output_tokens},
            })  # fmt: skip
            return
        tool_calls = []
        for i, c in enumerate(calls):
            if isinstance(c, ToolCall):
                name, args = c.name, json.dumps(c.arguments)
            else:
                name, args = c.tool, c.raw
            tool_calls.append({"id": f"call_{len(srv.bodies)}_{i}", "type": "function",
                               "function": {"name": name, "arguments": args}})  # fmt: skip
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        self._reply(200, {
            "id": f"chatcmpl-{len(srv.bodies)}", "object": "chat.completion", "created": 0,
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": usage.input_tokens,
                      "completion_tokens": usage.output_tokens,
                      "total_tokens": usage.input_tokens + usage.output_tokens},
        })  # fmt: skip

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


Script = list[Item | Callable[[str], Item]]


def serve() -> AbstractContextManager[ModelServer]:
    return running(ModelServer(), poll_interval=0.05)
