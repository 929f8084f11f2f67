"""JSON Schemas for an agent's JSON fields (tools, settings, transfer targets), checked with jsonschema."""

import jsonschema
from django.core.exceptions import ValidationError

from agents.engines import model_choices, provider_choices
from core.validators import E164_PATTERN

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}\Z"  # the LLM providers' tool-name rule
DESTINATION_PATTERN = rf"({E164_PATTERN})|(^ext:[0-9]{{1,10}}\Z)"  # E.164 or ext:NNN
RESERVED_TOOL_NAMES = {"transfer_call", "end_call"}  # built in to every agent

TOOLS_SCHEMA = {
    "type": "array",
    "maxItems": 64,
    "items": {
        "type": "object",
        "required": ["name", "description", "parameters", "webhook_url"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
            "description": {"type": "string", "minLength": 1, "maxLength": 1024},
            "parameters": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
            },
            "webhook_url": {"type": "string", "pattern": r"^https?://"},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            "filler": {"type": "string", "maxLength": 200},
        },
    },
}

_SECTION = {"type": "object"}
SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stt": {
            **_SECTION,
            "properties": {
                "provider": {"enum": provider_choices("stt")},
                "model": {"type": "string"},
                "language": {"type": "string"},
                "interim_results": {"type": "boolean"},
                "punctuate": {"type": "boolean"},
                "smart_format": {"type": "boolean"},
            },
        },
        "llm": {
            **_SECTION,
            "properties": {
                "provider": {"enum": provider_choices("llm")},
                "model": {"type": "string"},
                "fallback_model": {"type": "string"},
                "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": 8192},
                "streaming": {"type": "boolean"},
            },
        },
        "tts": {
            **_SECTION,
            "properties": {
                "provider": {"enum": provider_choices("tts")},
                "model": {"enum": model_choices("tts")},
                "default_voice_id": {"type": "string"},
                "exaggeration": {"type": "number", "minimum": 0.25, "maximum": 2},
                "cfg_weight": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "vad": {
            **_SECTION,
            "properties": {
                "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                "min_speech_duration_ms": {"type": "integer", "minimum": 0, "maximum": 5000},
                "min_silence_duration_ms": {"type": "integer", "minimum": 0, "maximum": 5000},
            },
        },
        "conversation": {
            **_SECTION,
            "properties": {
                "max_history_tokens": {"type": "integer", "minimum": 256},
                "summarize_after_turns": {"type": "integer", "minimum": 1},
                "greeting_enabled": {"type": "boolean"},
                "transfer_enabled": {"type": "boolean"},
            },
        },
        "tools": {
            **_SECTION,
            "properties": {
                "webhook_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                "max_concurrent_tools": {"type": "integer", "minimum": 1, "maximum": 10},
            },
        },
        # Post-call analysis (sent as call.analyzed): what to look for and the structured fields to extract.
        "analysis": {
            **_SECTION,
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "instructions": {"type": "string", "maxLength": 4000},
                "outcomes": {
                    "type": "array",
                    "maxItems": 32,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
                            "description": {"type": "string", "maxLength": 500},
                        },
                    },
                },
                "fields_schema": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
                },
            },
        },
    },
}

TRANSFER_TARGETS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "destination"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "destination": {"type": "string", "pattern": DESTINATION_PATTERN},
            "type": {"enum": ["blind", "warm"]},
            "description": {"type": "string", "maxLength": 500},
        },
    },
}


# Plain-language explanations of the patterns, instead of the regular expressions themselves.
PATTERN_HELP = {
    TOOL_NAME_PATTERN: "use 1 to 64 letters, digits, '_' or '-'",
    DESTINATION_PATTERN: "use an E.164 number (+15551234567) or an extension (ext:1001)",
    r"^https?://": "must start with http:// or https://",
}


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern":
        return f"{error.instance!r} is not valid: {PATTERN_HELP.get(error.validator_value, 'wrong format')}"
    return error.message


def _validate(value, schema: dict, what: str) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        messages = [f"{what}{_path(e)}: {_message(e)}" for e in errors[:10]]
        raise ValidationError(messages)


def _path(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)


def validate_tools(value) -> None:
    _validate(value, TOOLS_SCHEMA, "tools")
    names = [tool["name"] for tool in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"tools: duplicate tool names {duplicates}.")
    reserved = sorted(set(names) & RESERVED_TOOL_NAMES)
    if reserved:
        raise ValidationError(f"tools: {reserved} are built-in tools and cannot be redefined.")
    for tool in value:
        try:
            jsonschema.Draft202012Validator.check_schema(tool["parameters"])
        except jsonschema.SchemaError as exc:
            raise ValidationError(
                f"tools[{tool['name']!r}].parameters is not a valid JSON Schema: {exc.message}"
            ) from exc


def validate_agent_settings(value) -> None:
    _validate(value, SETTINGS_SCHEMA, "settings")
    fields_schema = ((value or {}).get("analysis") or {}).get("fields_schema")
    if fields_schema is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(fields_schema)
        except jsonschema.SchemaError as exc:
            raise ValidationError(
                f"settings['analysis']['fields_schema'] is not a valid JSON Schema: {exc.message}"
            ) from exc


def validate_transfer_targets(value) -> None:
    _validate(value, TRANSFER_TARGETS_SCHEMA, "transfer_targets")
