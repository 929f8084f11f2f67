"""Dashboard pages of the telephony app (mounted at the site root by voiceapp/urls.py)."""

app_name = "telephony"

urlpatterns: list = []
