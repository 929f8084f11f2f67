"""Dashboard pages of the integrations app (mounted at the site root by voiceapp/urls.py)."""

app_name = "integrations"

urlpatterns: list = []
