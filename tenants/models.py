"""Tenants (teams), their members, and their realtime apps with credentials."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_key() -> str:
    return secrets.token_hex(10)


def new_secret() -> str:
    return secrets.token_hex(16)


def new_invitation_token() -> str:
    return secrets.token_urlsafe(32)


class Tenant(models.Model):
    """A team: owns apps and is what billing charges."""

    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)
    # The operator's own tenant (apps made by ``manage.py create_app`` and the dashboard's system
    # app). At most one: every server process makes it on first use, at the same moment.
    is_operator = models.BooleanField(default=False, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["is_operator"], condition=models.Q(is_operator=True),
                                               name="one_operator_tenant")]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user's place in a team: every user belongs to at most one tenant."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.user} in {self.tenant} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


INVITATION_VALID_DAYS = 7


class Invitation(models.Model):
    """An emailed link that lets its holder join ``tenant`` as a member, once, within a week."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.email} to {self.tenant}"

    @property
    def expires_at(self):
        return self.created_at + timedelta(days=INVITATION_VALID_DAYS)

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


# Channel history (docs/recovery.md): defaults of a new app, and the most any app may set whatever
# its plan (a plan without bounds, such as the operator's, gets these). 24 h is also how long an idle
# channel's stream metadata lives, so a longer ttl would never be used.
HISTORY_SIZE_DEFAULT = 100
HISTORY_TTL_DEFAULT = 120
HISTORY_SIZE_CEILING = 10_000
HISTORY_TTL_CEILING = 24 * 3600

# Pusher's webhook events, in the order the dashboard lists them.
WEBHOOK_EVENTS = ("channel_occupied", "channel_vacated", "member_added", "member_removed",
                  "client_event", "cache_miss")


class App(models.Model):
    """A realtime app: the Pusher ``app_id`` is this row's integer primary key."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=120)
    key = models.CharField(max_length=40, unique=True, default=new_key)
    secret = models.CharField(max_length=64, default=new_secret)
    previous_secret = models.CharField(max_length=64, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    client_events = models.BooleanField(default=False, help_text="Allow client- events on private/presence channels")
    subscription_count = models.BooleanField(default=False, help_text="Send pusher:subscription_count events")
    max_message_bytes = models.PositiveIntegerField(default=10 * 1024)
    allowed_origins = models.TextField(
        blank=True, default="",
        help_text="One origin per line (https://example.com, *.example.com). Empty: any origin.")
    webhook_url = models.URLField(
        blank=True, default="", max_length=500,
        help_text="Receives Pusher-format webhooks (channel occupied/vacated, members, client events, cache misses)")
    # Which of Pusher's webhook events go to webhook_url (comma-separated names of WEBHOOK_EVENTS);
    # service/realtime/webhooks.py drops the others before they are queued or counted.
    webhook_events = models.CharField(
        max_length=200, blank=True, default=",".join(WEBHOOK_EVENTS),
        help_text="Comma-separated webhook event names to send; empty: none")
    # The public demo page (/demo/?key=...) acts for the app with nothing but its public key: it
    # shows the live counts, publishes into the tabcast-demo channels and signs their private/presence
    # twins for any visitor. So it is off unless the team switches it on (``create_app --demo`` and
    # ``seed_demo`` for the operator's apps); the app's own team, logged in, may always try it
    # (service/sdk/demo.py).
    demo_enabled = models.BooleanField(
        default=False,
        help_text="Let anyone who knows the app key use the demo page at /demo/ with this app")
    # Channel history and resume (docs/recovery.md), each bounded by the tenant's plan (the settings
    # form checks it; load_app applies the plan's bound again, so a downgrade takes effect at once).
    history_size = models.PositiveIntegerField(
        default=HISTORY_SIZE_DEFAULT,
        help_text="Messages kept per channel for resume and the history API; 0 turns history off")
    history_ttl = models.PositiveIntegerField(
        default=HISTORY_TTL_DEFAULT, help_text="Seconds a channel's history is kept after its last publish")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def demo_allowed(self) -> bool:
        """Whether /demo/ may act for this app for anyone holding its key: only if switched on.

        The operator's apps are no exception: the dashboard's own app lives there, and its key is
        shown to every signed-in customer."""
        return self.enabled and self.demo_enabled

    @property
    def webhook_event_names(self) -> tuple[str, ...]:
        """The selected webhook events, known names only, in WEBHOOK_EVENTS order."""
        chosen = {name.strip() for name in self.webhook_events.split(",")}
        return tuple(name for name in WEBHOOK_EVENTS if name in chosen)

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(line.strip() for line in self.allowed_origins.splitlines() if line.strip())

    def rotate_secret(self, grace: timedelta | None = None) -> None:
        """New secret now; the old one keeps working for the grace period."""
        grace = grace if grace is not None else timedelta(seconds=settings.TABCAST["SECRET_GRACE_SECONDS"])
        self.previous_secret = self.secret
        self.previous_secret_expires_at = timezone.now() + grace
        self.secret = new_secret()

    @property
    def previous_secret_active(self) -> bool:
        return bool(self.previous_secret and self.previous_secret_expires_at
                    and self.previous_secret_expires_at > timezone.now())


class WebhookAttempt(models.Model):
    """One try at POSTing webhooks to an app's URL, for the Settings page (the last KEEP per app).

    Written by the server process that sent it (tenants/webhook_log.py), so a dashboard served
    by any process shows every process's attempts."""

    KEEP = 20

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="webhook_attempts")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    url = models.CharField(max_length=500)
    events = models.CharField(max_length=200, help_text="Comma-separated event names in the request")
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status; empty if none came")
    error = models.CharField(max_length=200, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    test = models.BooleanField(default=False, help_text="Sent by the Settings page's test button")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.app_id} {self.events} -> {self.status or self.error}"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300
