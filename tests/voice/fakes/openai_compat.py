"""An OpenAI-compatible chat endpoint (`POST /v1/chat/completions`, `stream: true`), the shape
llama.cpp, Ollama and vLLM serve: `data: <chat.completion.chunk JSON>` lines, a last chunk with
`usage` (the client asks for it with `stream_options.include_usage`), then `data: [DONE]`."""

import json

from aiohttp import web

from tests.voice.fakes.base import LocalServer


class FakeOpenAICompatible(LocalServer):
    def __init__(self, *, reply: str = "Hello from the local model.", status: int = 200) -> None:
        super().__init__()
        self.reply, self.status = reply, status
        self.requests: list[dict] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.completions)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": {k.lower(): v for k, v in request.headers.items()}})
        if self.status != 200:
            error = {"error": {"message": "model not loaded", "type": "server_error"}}
            return web.json_response(error, status=self.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in _chunks(body["model"], self.reply):
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _chunks(model: str, reply: str) -> list[dict]:
    def chunk(choices: list, **extra) -> dict:
        base = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 1763200000, "model": model}
        return {**base, "choices": choices, **extra}

    words = reply.split(" ")
    deltas = [{"role": "assistant", "content": words[0]}] + [{"content": f" {w}"} for w in words[1:]]
    body = [chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
    body.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    usage = {"prompt_tokens": 20, "completion_tokens": len(words), "total_tokens": 20 + len(words)}
    body.append(chunk([], usage=usage))
    return body
