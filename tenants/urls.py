from django.urls import path

from .views import accounts, apps, docs, team

app_name = "tenants"

urlpatterns = [
    path("", accounts.home, name="home"),
    # Accounts
    path("signup/", accounts.signup, name="signup"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("password-reset/", accounts.password_reset, name="password_reset"),
    path("password-reset/sent/", accounts.password_reset_done, name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", accounts.password_reset_confirm, name="password_reset_confirm"),
    path("password-reset/done/", accounts.password_reset_complete, name="password_reset_complete"),
    path("dashboard/account/password/", accounts.password_change, name="password_change"),
    path("dashboard/account/password/done/", accounts.password_change_done, name="password_change_done"),
    path("invite/<str:token>/", accounts.invitation, name="invitation"),
    # Apps
    path("dashboard/", apps.app_list, name="app_list"),
    path("dashboard/apps/new/", apps.app_new, name="app_new"),
    path("dashboard/apps/<int:app_id>/", apps.app_detail, name="app_detail"),
    path("dashboard/apps/<int:app_id>/settings/", apps.app_settings, name="app_settings"),
    path("dashboard/apps/<int:app_id>/settings/webhook-test/", apps.app_webhook_test, name="app_webhook_test"),
    path("dashboard/apps/<int:app_id>/reveal/", apps.app_reveal, name="app_reveal"),
    path("dashboard/apps/<int:app_id>/rotate/", apps.app_rotate, name="app_rotate"),
    path("dashboard/apps/<int:app_id>/rotate/expire-previous/", apps.app_expire_previous,
         name="app_expire_previous"),
    path("dashboard/apps/<int:app_id>/status/", apps.app_status, name="app_status"),
    path("dashboard/apps/<int:app_id>/delete/", apps.app_delete, name="app_delete"),
    # Documentation shipped with this install (README, protocol, SDK)
    path("docs/", docs.doc_index, name="doc_index"),
    path("docs/<slug:slug>/", docs.doc, name="doc"),
    # Team
    path("dashboard/team/", team.team, name="team"),
    path("dashboard/team/invitations/<int:invitation_id>/revoke/", team.revoke_invitation,
         name="revoke_invitation"),
    path("dashboard/team/members/<int:membership_id>/remove/", team.remove_member, name="remove_member"),
]
