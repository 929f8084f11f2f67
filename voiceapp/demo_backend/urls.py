"""DEMO ONLY: /demo-backend/ (the demo practice's tools; 404 unless DEBUG is on and the demo is seeded)."""

from django.urls import path, re_path

from voiceapp.demo_backend import views

app_name = "demo_backend"

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:name>", views.tool, name="tool"),
    re_path(r"^(?P<rest>.+)$", views.unknown),
]
