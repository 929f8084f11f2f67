"""Dashboard forms of the telephony app."""

from typing import cast

from django import forms

from agents.models import Agent
from agents.selectors import agent_list
from core.web.forms import ServiceErrorsMixin


class NumberAssignForm(ServiceErrorsMixin, forms.Form):
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
        cast(forms.ModelChoiceField, self.fields["agent"]).queryset = agent_list(tenant=tenant)

    service_error_aliases = {"agent_id": "agent"}  # the service's name for this form's `agent`
