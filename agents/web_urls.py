"""Dashboard pages of the agents app (mounted at the site root by voiceapp/urls.py)."""

app_name = "agents"

urlpatterns: list = []
