"""The offline LLM: a deterministic local responder that answers from the agent's configuration (llm.py)."""

from voice.engines.responder.llm import LocalResponder


def build(config: dict, *, knowledge: list[dict] | None = None, agent_profile: dict | None = None, **_context):
    """The registry's builder: the agent's knowledge documents and profile are all it answers from."""
    return LocalResponder(knowledge=knowledge, agent_profile=agent_profile)
