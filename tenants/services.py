"""The tenants app's public surface: other apps call these, never the models directly."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from django.conf import settings
from django.utils.module_loading import import_string

from service.realtime.tenancy import AppInfo

from .models import (
    HISTORY_SIZE_CEILING,
    HISTORY_TTL_CEILING,
    INVITATION_VALID_DAYS,
    App,
    Invitation,
    Membership,
    Tenant,
)

OPERATOR_TENANT = "Operator"


def plan_limits(tenant_id: int) -> dict:
    """The tenant's plan limits from ``TABCAST["LIMITS_SOURCE"]`` (billing provides it): tenants
    never imports billing, so the dependency runs one way (billing -> tenants)."""
    source = settings.TABCAST.get("LIMITS_SOURCE")
    return (import_string(source)(tenant_id) or {}) if source else {}


def history_bounds(tenant_id: int) -> tuple[int, int]:
    """The most ``history_size`` (messages) and ``history_ttl`` (seconds) the tenant's apps may set."""
    return _history_bounds(plan_limits(tenant_id))


def _history_bounds(limits: dict) -> tuple[int, int]:
    """The plan's history bounds (None: unlimited), within what any app may set."""
    size, ttl = limits.get("max_history_size"), limits.get("max_history_ttl")
    return (HISTORY_SIZE_CEILING if size is None else min(size, HISTORY_SIZE_CEILING),
            HISTORY_TTL_CEILING if ttl is None else min(ttl, HISTORY_TTL_CEILING))


def to_info(app: App) -> AppInfo:
    expires = app.previous_secret_expires_at.timestamp() if app.previous_secret_expires_at else 0.0
    limits = plan_limits(app.tenant_id)
    # The plan bounds the app's history settings here too: after a downgrade the smaller bound
    # applies at once, before anyone edits the app's settings.
    max_size, max_ttl = _history_bounds(limits)
    return AppInfo(
        id=app.id, key=app.key, secret=app.secret, name=app.name, enabled=app.enabled,
        client_events=app.client_events, max_message_bytes=app.max_message_bytes,
        allowed_origins=app.origins, subscription_count=app.subscription_count,
        max_connections=limits.get("max_connections"), previous_secret=app.previous_secret,
        previous_secret_expires=expires, tenant_id=app.tenant_id,
        webhook_url=app.webhook_url, webhook_events=frozenset(app.webhook_event_names),
        history_size=min(app.history_size, max_size), history_ttl=max(1, min(app.history_ttl, max_ttl)),
        extra={"demo": app.demo_allowed},  # read by service/sdk/demo.py
    )


def load_app(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    """APP_SOURCE for the realtime engine: one app by key or id, as an AppInfo."""
    query = App.objects.select_related("tenant")
    try:
        app = query.get(key=key) if key is not None else query.get(id=app_id)
    except (App.DoesNotExist, ValueError):
        return None
    return to_info(app)


def normalize_email(email: str) -> str:
    """Accounts are keyed by e-mail: one spelling per address (username = lower-cased email)."""
    return email.strip().lower()


def email_taken(email: str) -> bool:
    """Whether an account already uses this address (in any letter case)."""
    return get_user_model().objects.filter(username=normalize_email(email)).exists()


def default_team_name(email: str) -> str:
    """The team name used when the user gives none: "sam's team" for sam@example.com."""
    return f"{email.split('@')[0]}'s team"


@transaction.atomic
def sign_up(email: str, password: str, team_name: str = ""):
    """Create a user (username = email), their team, and make them its owner."""
    email = normalize_email(email)
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    create_tenant_for(user, team_name.strip() or default_team_name(email))
    return user


def membership_of(user) -> Membership | None:
    """The user's membership with its tenant, or None for a user in no team."""
    return Membership.objects.select_related("tenant").filter(user=user).first()


def tenant_of(user) -> Tenant | None:
    """The user's team, or None."""
    membership = membership_of(user)
    return membership.tenant if membership else None


@transaction.atomic
def create_tenant_for(user, name: str) -> Tenant:
    """A new team with ``user`` as its owner."""
    tenant = Tenant.objects.create(name=name)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


def create_app(name: str, *, tenant: Tenant | None = None, client_events: bool = False, **fields) -> App:
    """Create an app; without a tenant it belongs to the operator's own tenant."""
    return App.objects.create(tenant=tenant or operator_tenant(), name=name, client_events=client_events, **fields)


def operator_tenant() -> Tenant:
    """The operator's tenant, made on first use; processes racing to make it share one."""
    tenant = Tenant.objects.filter(is_operator=True).first()
    if tenant is None:
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(name=OPERATOR_TENANT, is_operator=True)
        except IntegrityError:  # another process made it first
            tenant = Tenant.objects.get(is_operator=True)
    return tenant


def ensure_membership(user) -> Membership:
    """The user's membership; one without a team (e.g. made by createsuperuser) gets their own."""
    membership = membership_of(user)
    if membership is None:
        create_tenant_for(user, default_team_name(user.email or user.get_username()))
        membership = membership_of(user)
    return membership


def apps_of(tenant: Tenant):
    """Every query for a tenant's apps starts here, so no view can reach another tenant's."""
    return App.objects.filter(tenant=tenant)


def set_enabled(app: App, enabled: bool) -> None:
    """Disable (connections refused with 4003, publishes rejected) or enable an app."""
    app.enabled = enabled
    app.save(update_fields=["enabled"])


def rotate_secret(app: App) -> None:
    """New secret; the old one keeps working until ``app.previous_secret_expires_at``."""
    app.rotate_secret()
    app.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])


def delete_app(app: App) -> None:
    """Delete an app: its key and secret stop working here at once, elsewhere once app caches expire."""
    app.delete()


def expire_previous_secret(app: App) -> None:
    """End the grace period now: only the current secret works from here on."""
    app.previous_secret = ""
    app.previous_secret_expires_at = None
    app.save(update_fields=["previous_secret", "previous_secret_expires_at"])


# --- Team ---------------------------------------------------------------------------------------


class InvitationError(Exception):
    """An invitation cannot be accepted; the message says why, for the user."""


def members_of(tenant: Tenant):
    """The team's memberships with their users, oldest first."""
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("joined_at", "id")


def pending_invitations(tenant: Tenant):
    """Invitations not yet accepted and not yet expired, newest first."""
    cutoff = timezone.now() - timedelta(days=INVITATION_VALID_DAYS)
    return Invitation.objects.filter(tenant=tenant, accepted_at=None, created_at__gt=cutoff).order_by("-created_at")


def is_member(tenant: Tenant, email: str) -> bool:
    """Whether the account with this address is already on the team."""
    return Membership.objects.filter(tenant=tenant, user__username=normalize_email(email)).exists()


def invite(tenant: Tenant, email: str, invited_by, accept_url_for) -> Invitation:
    """Create an invitation (replacing an open one to the same address) and e-mail its link.

    ``accept_url_for(token)`` makes the absolute link; the view knows the host the user is on.
    """
    email = normalize_email(email)
    with transaction.atomic():
        Invitation.objects.filter(tenant=tenant, email=email, accepted_at=None).delete()
        invitation = Invitation.objects.create(tenant=tenant, email=email, invited_by=invited_by)
    context = {"invitation": invitation, "accept_url": accept_url_for(invitation.token),
               "inviter": invited_by.email or invited_by.get_username(), "valid_days": INVITATION_VALID_DAYS}
    subject = render_to_string("tenants/email/invitation_subject.txt", context).strip()
    body = render_to_string("tenants/email/invitation_body.txt", context)
    send_mail(subject, body, None, [email])
    return invitation


def open_invitation(token: str) -> Invitation | None:
    """The invitation with this token if it can still be used."""
    invitation = Invitation.objects.select_related("tenant", "invited_by").filter(token=token).first()
    return invitation if invitation and invitation.is_open else None


@transaction.atomic
def join_with_new_account(invitation: Invitation, password: str):
    """Sign up through an invitation: the account joins the inviting team as a member."""
    user = get_user_model().objects.create_user(
        username=invitation.email, email=invitation.email, password=password)
    Membership.objects.create(user=user, tenant=invitation.tenant, role=Membership.Role.MEMBER)
    _mark_accepted(invitation)
    return user


def acceptance_problem(invitation: Invitation, user) -> str | None:
    """Why ``user`` cannot accept ``invitation`` (a sentence for them), or None if they can."""
    if normalize_email(user.email or user.get_username()) != invitation.email:
        return (f"This invitation was sent to {invitation.email}. "
                "Log out and sign in with that address to accept it.")
    membership = membership_of(user)
    if membership is None or membership.tenant_id == invitation.tenant_id:
        return None
    old = membership.tenant
    others = Membership.objects.filter(tenant=old).exclude(user=user)
    if not others.exists() and apps_of(old).exists():
        return (f"You are the only member of {old.name}, which still has apps. "
                "Delete them first, or invite someone to keep them.")
    if membership.is_owner and others.exists() and not others.filter(role=Membership.Role.OWNER).exists():
        return f"You own {old.name}, which has other members: it would be left without an owner."
    return None


@transaction.atomic
def accept_invitation(invitation: Invitation, user) -> None:
    """Move an existing user into the inviting team; their old team goes if nobody is left in it."""
    problem = acceptance_problem(invitation, user)
    if problem:
        raise InvitationError(problem)
    membership = membership_of(user)
    if membership is None:
        Membership.objects.create(user=user, tenant=invitation.tenant, role=Membership.Role.MEMBER)
    elif membership.tenant_id != invitation.tenant_id:
        old = membership.tenant
        membership.tenant = invitation.tenant
        membership.role = Membership.Role.MEMBER
        membership.joined_at = timezone.now()
        membership.save()
        if not Membership.objects.filter(tenant=old).exists():
            old.delete()
    _mark_accepted(invitation)


def _mark_accepted(invitation: Invitation) -> None:
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])


def revoke_invitation(tenant: Tenant, invitation_id: int) -> bool:
    """Delete one of the team's pending invitations; False if the team has no such invitation."""
    deleted, _ = Invitation.objects.filter(tenant=tenant, id=invitation_id, accepted_at=None).delete()
    return bool(deleted)


def remove_member(tenant: Tenant, membership_id: int, acting_user) -> bool:
    """Remove someone else from the team (their account stays; they get a fresh team on next sign-in)."""
    deleted, _ = Membership.objects.filter(tenant=tenant, id=membership_id).exclude(user=acting_user).delete()
    return bool(deleted)
