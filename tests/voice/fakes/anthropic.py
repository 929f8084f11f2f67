"""An Anthropic Messages API server (`POST /v1/messages`, `stream: true`), as the SDK reads it.

Streaming answers are Server-Sent Events, `event: <type>` + `data: <json>` (anthropic's
`_streaming.py`): `message_start`, `content_block_start`, `content_block_delta` (`text_delta` or,
for a tool_use block, `input_json_delta` with `partial_json`), `content_block_stop`,
`message_delta` (stop_reason and output usage), `message_stop`, with `ping`s in between. Errors
are a status code and `{"type": "error", "error": {"type": ..., "message": ...}}`; 529 is
`overloaded_error`.

Replies are planned per model: `plan(model, reply, ...)` queues replies, the last one repeats.
A reply is `text(...)`, `tool_use(...)` or `overloaded()`.
"""

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from tests.voice.fakes.base import LocalServer


@dataclass
class Reply:
    status: int = 200
    text: str = ""
    tool: tuple[str, dict] | None = None  # (name, input)
    chunks: list[str] = field(default_factory=list)


def text(*chunks: str) -> Reply:
    return Reply(text="".join(chunks), chunks=list(chunks))


def tool_use(name: str, arguments: dict, *, preamble: str = "") -> Reply:
    return Reply(text=preamble, chunks=[preamble] if preamble else [], tool=(name, arguments))


def overloaded() -> Reply:
    return Reply(status=529)


class FakeAnthropic(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self._plans: dict[str, list[Reply]] = {}
        self.requests: list[dict] = []  # {"body", "headers"}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)

    def plan(self, model: str, *replies: Reply) -> None:
        self._plans[model] = list(replies)

    def requests_for(self, model: str) -> list[dict]:
        return [r for r in self.requests if r["body"]["model"] == model]

    def _next(self, model: str) -> Reply:
        queue = self._plans.get(model) or [text("Hello from Claude.")]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": {k.lower(): v for k, v in request.headers.items()}})
        reply = self._next(body["model"])
        if reply.status != 200:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return web.json_response(error, status=reply.status, headers={"request-id": "req_overloaded"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "request-id": "req_01"})
        await response.prepare(request)
        for event in _events(body["model"], reply):
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def _events(model: str, reply: Reply) -> list[dict]:
    events = [_message_start(model), {"type": "ping"}]
    index = 0
    if reply.chunks:
        events += _text_block(index, reply.chunks)
        index += 1
    if reply.tool:
        events += _tool_block(index, *reply.tool)
    stop = "tool_use" if reply.tool else "end_turn"
    events.append(
        {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 12}}
    )
    events.append({"type": "message_stop"})
    return events


def _message_start(model: str) -> dict:
    message = {
        "id": "msg_01FAKE",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 42, "output_tokens": 1},
    }
    return {"type": "message_start", "message": message}


def _text_block(index: int, chunks: list[str]) -> list[dict]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}} for c in chunks),
        {"type": "content_block_stop", "index": index},
    ]


def _tool_block(index: int, name: str, arguments: dict) -> list[dict]:
    raw = json.dumps(arguments)
    pieces = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]  # arguments arrive in parts
    block = {"type": "tool_use", "id": "toolu_01FAKE", "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        *(
            {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
            for p in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]
