"""The Developers pages (one module per area): API keys, webhook endpoints and their deliveries, provider credentials, backends.

Every write goes through the service the REST API calls, with the same role it requires: API keys
and credentials are admin-only even to look at (as on /v1/api-keys and /v1/credentials); webhooks
and backend services may be read by anyone in the tenant and changed by admins. Secrets (a new API
key, a webhook signing secret) are shown once: the POST that made one redirects to a page that shows
it on its first view only (integrations.secret_once holds it, sealed, for that one view), so
reloading shows nothing again and never makes a second key. Never in a flash message.
"""

from integrations.views.backends import BackendCreateView, BackendDeleteView, BackendEditView, BackendListView
from integrations.views.credentials import (
    CredentialCreateView,
    CredentialDeleteView,
    CredentialListView,
    CredentialReplaceView,
    CredentialVerifyView,
)
from integrations.views.keys import ApiKeyCreatedView, ApiKeyCreateView, ApiKeyListView, ApiKeyRevokeView
from integrations.views.overview import DevelopersView
from integrations.views.webhooks import (
    DeliveryReplayView,
    WebhookCreateView,
    WebhookDeleteView,
    WebhookDetailView,
    WebhookEditView,
    WebhookListView,
    WebhookReplayView,
    WebhookRotateView,
    WebhookSecretView,
    WebhookTestView,
)

__all__ = [
    "ApiKeyCreateView",
    "ApiKeyCreatedView",
    "ApiKeyListView",
    "ApiKeyRevokeView",
    "BackendCreateView",
    "BackendDeleteView",
    "BackendEditView",
    "BackendListView",
    "CredentialCreateView",
    "CredentialDeleteView",
    "CredentialListView",
    "CredentialReplaceView",
    "CredentialVerifyView",
    "DeliveryReplayView",
    "DevelopersView",
    "WebhookCreateView",
    "WebhookDeleteView",
    "WebhookDetailView",
    "WebhookEditView",
    "WebhookListView",
    "WebhookReplayView",
    "WebhookRotateView",
    "WebhookSecretView",
    "WebhookTestView",
]
