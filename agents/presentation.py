"""How the dashboard words what a voice will actually sound like on this deployment, and how far a knowledge
document's embedding has got."""

from django.conf import settings

from agents.engines import CHATTERBOX, Choice
from agents.models import KnowledgeDocument, Voice

PIPER_SPEAKER = "Piper's male US English voice (joe)"


def speaks_as(voice: Voice | None, engine: Choice) -> tuple[str, str]:
    """(what will speak, why that is not the voice's own engine, or "").

    A Chatterbox voice needs the TTS node; without one every call and sample is spoken by Piper's one
    offline voice, whatever the voice's name says ("Default female" included), and the page says so.
    """
    if engine.provider == CHATTERBOX:
        return f"This voice, on Chatterbox ({engine.model})", ""
    if voice is not None and voice.provider == Voice.Provider.PIPER:
        return PIPER_SPEAKER, ""
    if not settings.CHATTERBOX_URL:
        why = "This Chatterbox voice needs the TTS node (CHATTERBOX_URL), which this deployment does not have"
    else:
        why = "This deployment speaks with its offline engine (TTS_PROVIDER is not chatterbox)"
    return PIPER_SPEAKER, f"{why}: calls and samples are spoken by Piper instead."


# --- knowledge documents --------------------------------------------------------------------------

STATUS_WORDS = {
    # status: (label, badge tone, how often a page showing it asks again, in seconds; 0: not at all)
    "pending": ("Waiting", "neutral", 3),
    "processing": ("Embedding", "live", 2),
    "ready": ("Ready", "ok", 0),
    "failed": ("Failed", "failed", 0),
}
RETRY_POLL_SECONDS = 30


def document_status(document: KnowledgeDocument) -> dict:
    """A knowledge document's embedding as the agent pages show it, and as their polling JSON returns it."""
    label, tone, poll = STATUS_WORDS[document.status]
    done, total = document.chunks_embedded, document.chunks_total
    retrying = document.status == KnowledgeDocument.Status.PENDING and bool(document.error)
    if retrying:
        label, tone, poll = "Retrying", "attention", RETRY_POLL_SECONDS
        detail = document.error
    elif document.status == KnowledgeDocument.Status.PENDING:
        detail = "Searchable by its words now; by meaning once embedded."
    elif document.status == KnowledgeDocument.Status.PROCESSING:
        detail = f"{done} of {total} passages embedded."
    elif document.status == KnowledgeDocument.Status.READY:
        detail = f"{total} passage{'' if total == 1 else 's'}, searchable by meaning."
    else:
        detail = document.error or "Embedding failed."
    return {
        "id": str(document.pk),
        "status": document.status,
        "label": label,
        "tone": tone,
        "percent": round(document.progress * 100),
        "done": done,
        "total": total,
        "detail": detail,
        "retryable": document.status == KnowledgeDocument.Status.FAILED or retrying,
        "poll_seconds": poll,
    }
