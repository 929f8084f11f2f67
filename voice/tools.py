"""The agent's tools as framework function tools (docs/voice-pipeline.md#tools).

Each JSON definition of `agent.tools` becomes a raw function tool with the same name, description
and JSON Schema. When the LLM calls one:

1. its arguments are checked against the schema (jsonschema); a mistake goes back to the LLM as a
   tool error so it can ask the caller for the missing detail;
2. it waits for a slot (at most `max_concurrent_tools` per call run at once);
3. the webhook goes through the integration gateway (retry, rate limit, breaker, audit) with a
   `ServiceConfig` made from the tool's url, method and timeout, while the tool's filler line (or
   a default) is spoken if the backend has not answered within `FILLER_AFTER` seconds;
4. the result goes back to the LLM, which puts it into words; a failure goes back as a tool error,
   so the caller is told and the conversation carries on;
5. every call is stored as a `ToolCall` with a `tool.called` event.

Built in: `transfer_call` (to one of the agent's transfer targets, blind or warm), `end_call`, and, where
the call's carrier can play keypad tones, `send_digits`. They let the LLM speak first and act when that
speech is over.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import jsonschema
from livekit.agents import llm
from livekit.agents.llm import ToolError
from livekit.agents.voice import RunContext

from calls.models import ToolCall
from core import jsonsafe
from integrations.config import parse_service
from integrations.gateway import GatewayError, GatewayHTTPError, GatewayTimeout
from voice.recorder import ToolCallRecord

if TYPE_CHECKING:  # the gateway's client is imported when a tool first calls out (_loop_gateway)
    from integrations.gateway.client import Gateway

DEFAULT_FILLER = "One moment while I check that for you."
FILLER_AFTER = 0.4  # seconds: a backend that answers faster than this needs no filler
TOOL_RETRY = {"max_attempts": 2, "initial_backoff": "200ms", "max_backoff": "1s"}  # a caller is waiting
RESULT_CHARS = 4000  # what the LLM gets of a large response


class CallControl(Protocol):
    """What the built-in tools ask of the running call."""

    def request_transfer(self, *, transfer_type: str, target: str, context: str) -> None: ...

    def request_end(self) -> None: ...

    def send_digits(self, digits: str) -> None: ...


@dataclass
class ToolSettings:
    webhook_timeout_seconds: float = 10
    max_concurrent_tools: int = 3
    transfer_enabled: bool = True
    digits_enabled: bool = False  # the call's carrier can play keypad tones (send_digits)


@dataclass
class ToolContext:
    """Everything a call's tools need, loaded once when the session starts."""

    call_id: str
    tenant_id: str
    definitions: list[dict]
    transfer_targets: list[dict]
    resolver: object
    record: Callable[[ToolCallRecord], None]
    control: CallControl
    settings: ToolSettings = field(default_factory=ToolSettings)
    gateway: Callable[[], "Gateway"] | None = None  # the event loop's Gateway by default


def service_for(definition: dict, *, default_timeout: float, call_id: str):
    """The gateway service of one tool: its url, method and timeout, with a short retry policy."""
    return parse_service(
        f"tool-{definition['name']}",
        {
            "url": definition["webhook_url"],
            "method": definition.get("method", "POST"),
            "timeout": definition.get("timeout_seconds") or default_timeout,
            "retry": TOOL_RETRY,
            "headers": {"X-Call-Id": call_id, "X-Tool-Name": definition["name"]},
        },
    )


def _now() -> datetime:
    return datetime.now(tz=UTC)


def schema_errors(validator: jsonschema.Draft202012Validator, arguments) -> str:
    """The schema violations, in words the LLM can act on ('' when the arguments are valid)."""
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    return "; ".join(f"{'.'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message}" for e in errors[:5])


class CallTools:
    """Builds one call's function tools and runs them."""

    def __init__(self, ctx: ToolContext):
        self.ctx = ctx
        self._slots = asyncio.Semaphore(ctx.settings.max_concurrent_tools)
        self.running = 0  # for tests and the dashboard: tools in flight now
        self.peak = 0

    def build(self) -> list[llm.Tool]:
        tools = [self._webhook_tool(d) for d in self.ctx.definitions]
        if self.ctx.settings.transfer_enabled and self.ctx.transfer_targets:
            tools.append(self._transfer_tool())
        tools.append(self._end_tool())
        if self.ctx.settings.digits_enabled:
            tools.append(self._digits_tool())
        return tools

    # --- webhook tools ---------------------------------------------------------------------------

    def _webhook_tool(self, definition: dict) -> llm.Tool:
        name = definition["name"]
        validator = jsonschema.Draft202012Validator(definition["parameters"])
        service = service_for(
            definition, default_timeout=self.ctx.settings.webhook_timeout_seconds, call_id=self.ctx.call_id
        )
        filler = definition.get("filler") or DEFAULT_FILLER

        async def run_tool(raw_arguments: dict, context: RunContext):
            started = _now()
            problem = schema_errors(validator, raw_arguments)
            if problem:
                self._record(
                    name, raw_arguments, started, ToolCall.Status.FAILED, error=f"invalid arguments: {problem}"
                )
                raise ToolError(
                    f"The arguments for {name} are invalid ({problem}). Ask the caller for what is missing."
                )
            async with self._slots:
                return await self._call_webhook(name, service, filler, raw_arguments, context, started)

        schema = {"name": name, "description": definition["description"], "parameters": definition["parameters"]}
        return llm.function_tool(run_tool, raw_schema=schema)

    async def _call_webhook(self, name, service, filler, arguments, context, started) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            async with context.with_filler(filler, delay=FILLER_AFTER):
                response = await self._request(service, arguments, context)
        except GatewayError as exc:
            status = ToolCall.Status.TIMED_OUT if isinstance(exc, GatewayTimeout) else ToolCall.Status.FAILED
            self._record(name, arguments, started, status, error=str(exc), http_status=getattr(exc, "status", None))
            raise ToolError(_failure_for_llm(name, exc)) from exc
        finally:
            self.running -= 1
        result = _parse(response.content)
        self._record(
            name, arguments, started, ToolCall.Status.SUCCEEDED, result=result, http_status=response.status_code
        )
        return json.dumps(result)[:RESULT_CHARS]

    async def _request(self, service, arguments: dict, context: RunContext):
        gateway = (self.ctx.gateway or _loop_gateway)()
        in_query = service.method in ("GET", "DELETE")  # the arguments as the query, else as the JSON body
        return await gateway.request(
            service,
            tenant_id=self.ctx.tenant_id,
            resolver=self.ctx.resolver,
            call_session_id=self.ctx.call_id,
            # the same call of the same tool may be retried safely, even as a POST
            idempotency_key=f"{self.ctx.call_id}:{context.function_call.call_id}",
            params=arguments if in_query else None,
            json=None if in_query else arguments,
        )

    def _record(self, name, arguments, started, status, *, result=None, error="", http_status=None) -> None:
        self.ctx.record(
            ToolCallRecord(
                tool_name=name,
                arguments=arguments,
                started_at=started,
                ended_at=_now(),
                status=status,
                result=result,
                error=error[:2000],
                http_status=http_status,
            )
        )

    # --- built-ins -------------------------------------------------------------------------------

    def _transfer_tool(self) -> llm.Tool:
        targets = {t["name"].casefold(): t for t in self.ctx.transfer_targets}
        names = [t["name"] for t in self.ctx.transfer_targets]
        schema = {
            "name": "transfer_call",
            "description": "Transfer the caller to a person. Targets: "
            + "; ".join(f"{t['name']}: {t.get('description') or t['destination']}" for t in self.ctx.transfer_targets),
            "parameters": {
                "type": "object",
                "properties": {
                    "target": {"type": "string", "enum": names, "description": "Who to transfer to."},
                    "type": {"type": "string", "enum": ["blind", "warm"], "description": "warm: brief them first."},
                    "context": {"type": "string", "description": "One sentence on what the caller needs."},
                },
                "required": ["target"],
            },
        }
        validator = jsonschema.Draft202012Validator(schema["parameters"])

        async def transfer_call(raw_arguments: dict, context: RunContext):
            started = _now()
            target = targets.get(str(raw_arguments.get("target", "")).casefold())
            problem = schema_errors(validator, raw_arguments) or ("" if target else "unknown target")
            if problem or target is None:
                self._record("transfer_call", raw_arguments, started, ToolCall.Status.FAILED, error=problem)
                raise ToolError(f"Cannot transfer: {problem}. Targets are: {', '.join(names)}.")
            kind = raw_arguments.get("type") or target.get("type") or "warm"
            note = str(raw_arguments.get("context") or "")
            result = {"status": "transferring", "target": target["name"], "type": kind}
            self._record("transfer_call", raw_arguments, started, ToolCall.Status.SUCCEEDED, result=result)
            # Say the handover line first, then ask the bridge to transfer.
            context.speech_handle.add_done_callback(
                lambda _: self.ctx.control.request_transfer(transfer_type=kind, target=target["name"], context=note)
            )
            return json.dumps(result) + " Tell the caller you are transferring them now, in one short sentence."

        return llm.function_tool(transfer_call, raw_schema=schema)

    def _end_tool(self) -> llm.Tool:
        schema = {
            "name": "end_call",
            "description": "End the call once the caller is done. Say a short goodbye first.",
            "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}},
        }

        async def end_call(raw_arguments: dict, context: RunContext):
            self._record("end_call", raw_arguments, _now(), ToolCall.Status.SUCCEEDED, result={"status": "ending"})
            # Hang up once the goodbye that answers this tool has been played.
            context.speech_handle.add_done_callback(lambda _: self.ctx.control.request_end())
            return json.dumps({"status": "ending"}) + " Say a short goodbye; the call ends after it."

        return llm.function_tool(end_call, raw_schema=schema)

    def _digits_tool(self) -> llm.Tool:
        schema = {
            "name": "send_digits",
            "description": "Press keys on the phone (DTMF), e.g. to choose an option in a phone menu.",
            "parameters": {
                "type": "object",
                "properties": {
                    "digits": {"type": "string", "pattern": "^[0-9*#w]{1,32}$", "description": "Keys; w waits 0.5 s."}
                },
                "required": ["digits"],
            },
        }
        validator = jsonschema.Draft202012Validator(schema["parameters"])

        async def send_digits(raw_arguments: dict, context: RunContext):
            started = _now()
            problem = schema_errors(validator, raw_arguments)
            if problem:
                self._record("send_digits", raw_arguments, started, ToolCall.Status.FAILED, error=problem)
                raise ToolError(f"Cannot press those keys: {problem}.")
            digits = raw_arguments["digits"]
            self._record("send_digits", raw_arguments, started, ToolCall.Status.SUCCEEDED, result={"sent": digits})
            # Press the keys once anything the agent is saying now has been played.
            context.speech_handle.add_done_callback(lambda _: self.ctx.control.send_digits(digits))
            return json.dumps({"status": "sent", "digits": digits})

        return llm.function_tool(send_digits, raw_schema=schema)


def _loop_gateway() -> "Gateway":
    from integrations.gateway.client import get_gateway

    return get_gateway()


def _parse(content: bytes):
    try:
        return jsonsafe.loads(content) if content else {}
    except ValueError:
        return {"text": content.decode("utf-8", "replace")[:RESULT_CHARS]}


def _failure_for_llm(name: str, exc: GatewayError) -> str:
    if isinstance(exc, GatewayHTTPError):
        why = f"the backend answered HTTP {exc.status}"
    elif isinstance(exc, GatewayTimeout):
        why = "the backend did not answer in time"
    else:
        why = "the backend could not be reached"
    return f"{name} failed: {why}. Tell the caller you could not do this right now and offer other help."
