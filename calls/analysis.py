"""Post-call analysis: summary, outcome, sentiment and the agent's structured fields.

With an Anthropic key (the tenant's vault credential, else the platform's) the agent's LLM fills a
tool whose input schema is the analysis, the agent's own `fields_schema` included. Without one, or
if the LLM fails, the offline analysis below reads the transcript with plain rules, the way the
offline responder answers calls: it says what it found and leaves out what it did not.
"""

import logging
import re
from datetime import date, timedelta

import anthropic
import jsonschema
from django.conf import settings

from agents.engines import ANTHROPIC, ENGINES
from agents.secrets import provider_secrets
from calls import presentation
from calls.models import Call, ToolCall, TranscriptTurn

logger = logging.getLogger(__name__)

SENTIMENTS = ("positive", "neutral", "negative")
POSITIVE = {
    "thanks",
    "thank",
    "great",
    "perfect",
    "wonderful",
    "appreciate",
    "excellent",
    "awesome",
    "helpful",
    "lovely",
}
NEGATIVE = {"angry", "terrible", "awful", "unhappy", "frustrated", "frustrating", "complaint", "ridiculous", "upset", "worst", "useless", "rude", "disappointed"}  # fmt: skip
STOPWORDS = {"the", "a", "an", "to", "of", "and", "or", "for", "is", "was", "call", "caller", "with", "on", "in"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TOOL_NAME = "record_call_analysis"


def config_for(call: Call) -> dict:
    return (call.agent.settings or {}).get("analysis") or {}


def analyze(call: Call, turns: list[TranscriptTurn]) -> dict:
    """The analysis of an ended call, by the LLM when a key is configured, else offline."""
    config = config_for(call)
    if config.get("enabled") is False:
        return {}
    llm = call.agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS)["llm"]
    key = _anthropic_key(call) if llm.get("provider") == ANTHROPIC else ""
    if key and turns:
        model = llm.get("model") or ENGINES[ANTHROPIC].default_model
        try:
            return _llm_analysis(call, turns, config, api_key=key, model=model)
        except Exception as exc:  # any LLM failure: the offline analysis still answers
            logger.warning("LLM analysis of call %s failed (%s); using the offline analysis", call.pk, exc)
            return {**offline_analysis(call, turns, config), "fallback_reason": type(exc).__name__}
    return offline_analysis(call, turns, config)


def _anthropic_key(call: Call) -> str:
    """The tenant's own Anthropic key where it has a usable one, else the platform's (agents.secrets)."""
    return provider_secrets(tenant=call.tenant, names=["anthropic_api_key"]).get("anthropic_api_key", "")


# --- with the LLM -------------------------------------------------------------------------------


def analysis_schema(config: dict) -> dict:
    outcome: dict[str, str | list[str]] = {"type": "string", "description": "The call's outcome."}
    if config.get("outcomes"):
        outcome["enum"] = [o["name"] for o in config["outcomes"]]
    properties = {
        "summary": {"type": "string", "description": "Two or three sentences on what happened."},
        "outcome": outcome,
        "sentiment": {"enum": list(SENTIMENTS), "description": "The caller's overall sentiment."},
    }
    if config.get("fields_schema"):
        properties["fields"] = config["fields_schema"]
    return {"type": "object", "required": ["summary", "outcome", "sentiment"], "properties": properties}


def _llm_analysis(call: Call, turns, config: dict, *, api_key: str, model: str) -> dict:
    client = anthropic.Anthropic(api_key=api_key, base_url=settings.ANTHROPIC_BASE_URL or None, timeout=60)
    schema = analysis_schema(config)
    outcomes = "\n".join(f"- {o['name']}: {o.get('description', '')}" for o in config.get("outcomes", []))
    system = (
        "You analyse a finished phone call between an AI agent and a caller. Record the analysis with the "
        f"{TOOL_NAME} tool. Leave out structured fields the call does not mention.\n"
        + (f"Possible outcomes:\n{outcomes}\n" if outcomes else "")
        + (config.get("instructions") or "")
    )
    message = client.messages.create(
        model=model,
        max_tokens=1024,
        system=system,
        messages=[{"role": "user", "content": transcript_text(turns)}],
        tools=[{"name": TOOL_NAME, "description": "Record the call analysis.", "input_schema": schema}],
        tool_choice={"type": "tool", "name": TOOL_NAME},
    )
    result = next(block.input for block in message.content if block.type == "tool_use")
    jsonschema.validate(result, schema)
    return {
        "summary": result["summary"],
        "outcome": result["outcome"],
        "sentiment": result["sentiment"],
        "fields": result.get("fields") or {},
        "provider": "anthropic",
        "model": model,
    }


def transcript_text(turns) -> str:
    return "\n".join(f"{turn.speaker}: {turn.text}" for turn in turns)


# --- offline ------------------------------------------------------------------------------------


def offline_analysis(call: Call, turns: list[TranscriptTurn], config: dict) -> dict:
    caller = " ".join(t.text for t in turns if t.speaker == TranscriptTurn.Speaker.CALLER)
    everything = " ".join(t.text for t in turns)
    fields = extract_fields(
        config.get("fields_schema") or {}, caller, today=(call.started_at or call.created_at).date()
    )
    result = {
        "summary": summary(call, turns),
        "outcome": outcome(call, everything, config.get("outcomes") or []),
        "sentiment": sentiment(caller),
        "fields": fields,
        "provider": "offline",
        "model": "rules",
    }
    if not _words(caller):
        del result["sentiment"]  # the caller said nothing: no evidence either way, so not "neutral"
    return result


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def sentiment(text: str) -> str:
    words = _words(text)
    score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def outcome(call: Call, text: str, outcomes: list[dict]) -> str:
    """A call that failed says so first; then the configured outcome whose words the transcript shares
    most; else one read from how the call ended."""
    if not call.answered_at:
        return "not_connected"
    if call.end_reason == Call.EndReason.ERROR:
        return "failed"
    if _every_request_failed(call):
        return "requests_failed"  # whatever was asked for, the backend never answered: nothing was done
    if outcomes:
        words = set(_words(text))
        scored = [(len(_terms(o) & words), -i, o["name"]) for i, o in enumerate(outcomes)]
        best = max(scored)
        return best[2] if best[0] > 0 else "unknown"
    if call.end_reason == Call.EndReason.TRANSFERRED:
        return "transferred"
    if (call.duration_seconds or 0) < 10 and call.end_reason == Call.EndReason.CALLER_HANGUP:
        return "abandoned"
    return "completed"


def _every_request_failed(call: Call) -> bool:
    """The agent asked the tenant's backend at least once and never got an answer."""
    statuses = [tool_call.status for tool_call in call.tool_calls.all()]
    return bool(statuses) and all(status != ToolCall.Status.SUCCEEDED for status in statuses)


def _terms(outcome: dict) -> set[str]:
    return {
        w
        for w in _words(outcome["name"].replace("_", " ") + " " + outcome.get("description", ""))
        if w not in STOPWORDS
    }


def summary(call: Call, turns) -> str:
    if not call.answered_at:
        why = presentation.failure_text(call) or "it was never answered"
        return f"{presentation.call_title(call)} with {call.agent.name} never connected: {why[0].lower()}{why[1:]}."
    duration = presentation.duration_text(call.duration_seconds or 0)
    parts = [f"{call.direction.capitalize()} call of {duration} with {call.agent.name}."]
    first = next((t.text for t in turns if t.speaker == TranscriptTurn.Speaker.CALLER), "")
    if first:
        parts.append(f'The caller said: "{first[:200]}".')
    tools = sorted({tc.tool_name for tc in call.tool_calls.all()})
    if tools:
        parts.append(f"Tools used: {', '.join(tools)}.")
    if call.end_reason:
        parts.append(f"It ended: {Call.EndReason(call.end_reason).label.lower()}.")
    return " ".join(parts)


def extract_fields(schema: dict, text: str, *, today: date) -> dict:
    """The schema's properties that plain rules can read from what the caller said."""
    found = {}
    for name, prop in (schema.get("properties") or {}).items():
        value = _extract(name.lower(), prop if isinstance(prop, dict) else {}, text, today)
        if value is not None:
            found[name] = value
    try:
        jsonschema.validate(found, {**schema, "required": []})
    except jsonschema.ValidationError:
        return {}
    return found


def _extract(name: str, prop: dict, text: str, today: date):
    kind, fmt = prop.get("type"), prop.get("format", "")
    if "enum" in prop:
        return next(
            (v for v in prop["enum"] if isinstance(v, str) and re.search(rf"\b{re.escape(v)}\b", text, re.I)), None
        )
    if kind == "boolean":
        phrase = name.replace("_", " ")
        return True if re.search(rf"\b{re.escape(phrase)}\b", text, re.I) else None
    if fmt == "date" or "date" in name or "day" in name:
        return _date(text, today)
    if fmt == "email" or "email" in name:
        match = re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)
        return match.group(0) if match else None
    if "phone" in name or ("number" in name and kind == "string"):
        match = re.search(r"\+?\d[\d\s().-]{6,}\d", text)
        return re.sub(r"[^\d+]", "", match.group(0)) if match else None
    if kind in ("integer", "number"):
        match = re.search(r"\b\d+(?:\.\d+)?\b", text)
        return (int(float(match.group(0))) if kind == "integer" else float(match.group(0))) if match else None
    if kind == "string" and "name" in name:
        match = re.search(r"\b(?:my name is|this is|i am|i'm)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)", text)
        return match.group(1) if match else None
    return None


def _date(text: str, today: date) -> str | None:
    match = re.search(r"\b\d{4}-\d{2}-\d{2}\b", text)
    if match:
        return match.group(0)
    lowered = text.lower()
    if "tomorrow" in lowered:
        return (today + timedelta(days=1)).isoformat()
    for index, day in enumerate(WEEKDAYS):
        if re.search(rf"\b{day}\b", lowered):
            ahead = (index - today.weekday()) % 7 or 7
            return (today + timedelta(days=ahead)).isoformat()
    if "today" in lowered:
        return today.isoformat()
    return None
