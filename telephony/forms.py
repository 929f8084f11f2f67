"""Dashboard forms of the telephony app."""

from django import forms

from agents.models import Agent
from agents.selectors import agent_list
from voiceapp.errors import ApplicationError


class NumberAssignForm(forms.Form):
    """Which of the tenant's agents answers a number (none: calls to it are turned away)."""

    agent = forms.ModelChoiceField(
        queryset=Agent.objects.none(),
        required=False,
        empty_label="Unassigned",
        error_messages={"invalid_choice": "Choose one of your agents."},
        help_text="The agent that answers calls to this number. Unassigned numbers turn callers away.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = agent_list(tenant=tenant)

    def add_service_error(self, exc: ApplicationError) -> None:
        """The service's refusal, next to the select (its `agent_id` is this form's `agent`)."""
        messages = [m for path, found in exc.fields.items() if path in ("agent", "agent_id") for m in found]
        self.add_error("agent" if messages else None, messages or exc.message)
