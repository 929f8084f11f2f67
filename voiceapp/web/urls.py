"""The dashboard's own URLs: overview, tenant switching, sign-in/out and password reset."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views as tenant_views
from voiceapp.web import views

app_name = "web"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("tenant/switch", views.TenantSwitchView.as_view(), name="switch-tenant"),
    path("members/", tenant_views.MembersView.as_view(), name="members"),
    path("members/<uuid:membership_id>/", tenant_views.MemberChangeView.as_view(), name="member-change"),
]

# Django's auth views under their standard names (login, logout, password_reset…), outside the namespace.
auth_urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(extra_context={"page_title": "Reset your password"}),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(extra_context={"page_title": "Check your email"}),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(extra_context={"page_title": "Choose a new password"}),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(extra_context={"page_title": "Password changed"}),
        name="password_reset_complete",
    ),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(extra_context={"page_title": "Change your password"}),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(extra_context={"page_title": "Password changed"}),
        name="password_change_done",
    ),
]
