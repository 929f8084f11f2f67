"""Dashboard pages of the billing app (mounted at the site root by voiceapp/urls.py)."""

app_name = "billing"

urlpatterns: list = []
