"""Template tags that word a call the same way on every page (calls.presentation)."""

from django import template

from calls import presentation

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """{{ seconds|duration }}: 82 -> "1:22" (the dashboard's one duration format)."""
    return presentation.duration_text(seconds)


@register.filter
def call_title(call) -> str:
    return presentation.call_title(call)


@register.filter
def call_duration(call) -> str:
    """A call's duration, empty while it is live or when it never connected."""
    return presentation.shown_duration(call)


@register.filter
def counterpart(call) -> str:
    return presentation.counterpart(call)


@register.filter
def analysis_outcome(code) -> str:
    return presentation.analysis_outcome_text(code)


@register.inclusion_tag("includes/call_outcome.html")
def call_outcome(call, show_reason=True, testid="call-outcome"):
    """The call's badge (Ended / Failed / Not connected / live status) and, when it failed, why in words."""
    return {
        "call": call,
        "outcome": presentation.call_outcome(call),
        "show_reason": show_reason,
        "testid": testid,
    }
