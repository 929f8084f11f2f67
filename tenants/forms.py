"""Dashboard forms of the tenants app: adding a member by email, changing a member's role."""

from django import forms

from core.web.forms import ServiceErrorsMixin
from tenants.models import Membership


class MemberAddForm(ServiceErrorsMixin, forms.Form):
    email = forms.EmailField(
        help_text="Someone without an account here gets one, and an email with a link to choose a password."
    )
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.MEMBER,
        help_text="Viewer reads; member also edits agents and places calls; admin and owner also manage keys, "
        "webhooks, credentials and members.",
    )


class MemberRoleForm(ServiceErrorsMixin, forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
