"""Every piece of dashboard input is validated here; views only call ``is_valid()`` and services."""

from django import forms
from django.core import validators
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from . import origins, services
from .models import WEBHOOK_EVENTS, App

MIN_MESSAGE_BYTES = 1024
MAX_MESSAGE_BYTES = 512 * 1024


def _unsaved_user(email: str):
    """A user object the password validators can compare the password against."""
    return get_user_model()(username=email, email=email)


class PasswordField(forms.CharField):
    """A new password, checked by AUTH_PASSWORD_VALIDATORS in the form's clean()."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("widget", forms.PasswordInput(attrs={"autocomplete": "new-password"}))
        kwargs.setdefault("help_text", "At least 8 characters, not a common password.")
        super().__init__(**kwargs)


class SignupForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = PasswordField()
    team = forms.CharField(label="Team name", max_length=120, required=False,
                           help_text="Optional. You can invite teammates later.")

    def clean_email(self):
        email = services.normalize_email(self.cleaned_data["email"])
        if services.email_taken(email):
            raise forms.ValidationError("An account with this email already exists. Log in instead.",
                                        code="email_taken")
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email") and cleaned.get("password"):
            user = _unsaved_user(cleaned["email"])
            try:
                password_validation.validate_password(cleaned["password"], user)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class InvitationSignupForm(forms.Form):
    """Sign up through an invitation: the address is the invitation's, only a password is asked."""

    password = PasswordField()

    def __init__(self, *args, invitation, **kwargs):
        self.invitation = invitation
        super().__init__(*args, **kwargs)

    def clean_password(self):
        password = self.cleaned_data["password"]
        password_validation.validate_password(password, _unsaved_user(self.invitation.email))
        return password

    def clean(self):
        if services.email_taken(self.invitation.email):
            raise forms.ValidationError("An account with this email already exists: log in to accept.",
                                        code="email_taken")
        return super().clean()


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, with the username labelled and matched as an email address."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email",
                                                                              "autofocus": True}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Passwords are case-sensitive.",
    }

    def clean_username(self):
        return services.normalize_email(self.cleaned_data["username"])


class InviteForm(forms.Form):
    email = forms.EmailField(label="Teammate's email")

    def __init__(self, *args, tenant, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)

    def clean_email(self):
        email = services.normalize_email(self.cleaned_data["email"])
        if services.is_member(self.tenant, email):
            raise forms.ValidationError("%(email)s is already on this team.", code="already_member",
                                        params={"email": email})
        return email


class AppCreateForm(forms.ModelForm):
    class Meta:
        model = App
        fields = ["name"]
        help_texts = {"name": "For you and your team, e.g. “Production” or “Chat staging”."}
        widgets = {"name": forms.TextInput(attrs={"autofocus": True})}


class AppSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(
        label="Webhook URL", required=False, max_length=500, assume_scheme="https",
        help_text="Receives Pusher-format webhooks: a POST with X-Pusher-Key and X-Pusher-Signature "
                  "(HMAC-SHA256 of the body with the app secret), retried for 5 minutes until it answers 2xx. "
                  "Empty: no webhooks.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/pusher/webhooks", "spellcheck": "false"}))
    webhook_events = forms.MultipleChoiceField(
        label="Webhook events", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(name, name) for name in WEBHOOK_EVENTS],
        help_text="Only the events ticked here are sent (and counted as messages).")
    max_message_bytes = forms.IntegerField(
        label="Max message size (bytes)", min_value=MIN_MESSAGE_BYTES, max_value=MAX_MESSAGE_BYTES,
        help_text=f"Largest event payload accepted, from {MIN_MESSAGE_BYTES:,} to {MAX_MESSAGE_BYTES:,} bytes "
                  "(Pusher's default is 10,240).")
    # Not required: a form posted without them (an older page, a script) keeps the app's values.
    history_size = forms.IntegerField(label="Channel history (messages)", min_value=0, required=False)
    history_ttl = forms.IntegerField(label="Channel history lifetime (seconds)", min_value=1, required=False)
    allowed_origins = forms.CharField(
        required=False, help_text=origins.HELP,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false",
                                     "placeholder": "https://app.example.com\n*.example.com"}))

    class Meta:
        model = App
        fields = ["name", "client_events", "subscription_count", "max_message_bytes", "allowed_origins",
                  "history_size", "history_ttl", "demo_enabled", "webhook_url", "webhook_events"]
        labels = {"client_events": "Client events",
                  "subscription_count": "Subscription count events",
                  "demo_enabled": "Public demo page"}
        help_texts = {
            "client_events": "Let authenticated browsers send client- events on private and presence channels.",
            "subscription_count": "Send pusher:subscription_count to subscribers when a channel's count changes.",
            "demo_enabled": "Let anyone who knows this app's public key open Tabcast's demo at /demo/?key=…: "
                            "it shows the app's live connection counts, publishes short texts into the "
                            "tabcast-demo channels (counted as your traffic) and lets any visitor join "
                            "private-/presence-tabcast-demo. Leave off for production apps: your team can "
                            "always try the demo while logged in.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["webhook_events"] = list(self.instance.webhook_event_names)
        self._bound_history()

    def _bound_history(self) -> None:
        """The plan's history bounds (tenants.services.history_bounds, through LIMITS_SOURCE) as the fields' maxima."""
        max_size, max_ttl = services.history_bounds(self.instance.tenant_id)
        size, ttl = self.fields["history_size"], self.fields["history_ttl"]
        for field, bound in ((size, max_size), (ttl, max_ttl)):
            field.max_value = bound
            field.validators.append(validators.MaxValueValidator(
                bound, message="Your plan allows at most %(limit_value)s here."))
            field.widget.attrs["max"] = bound
        size.help_text = (f"Messages kept per channel, so a client that reconnects gets what it missed and your "
                          f"server can read them (GET …/channels/NAME/history). 0 turns history, positions and "
                          f"resume off. Your plan allows up to {max_size:,}.")
        ttl.help_text = (f"How long a channel's history is kept after its last publish: a client away for longer "
                         f"is told it missed messages (tabcast:resumed with recovered false) instead. "
                         f"Your plan allows up to {max_ttl:,} seconds.")

    def clean_history_size(self):
        value = self.cleaned_data["history_size"]
        return self.instance.history_size if value is None else value

    def clean_history_ttl(self):
        value = self.cleaned_data["history_ttl"]
        return self.instance.history_ttl if value is None else value

    def clean_allowed_origins(self):
        return origins.clean_origins(self.cleaned_data["allowed_origins"])

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"].strip()
        if url and not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// URL.", code="scheme")
        return url

    def clean_webhook_events(self):
        return ",".join(name for name in WEBHOOK_EVENTS if name in self.cleaned_data["webhook_events"])


class AppDeleteForm(forms.Form):
    """Deleting is final: the user types the app's name to confirm."""

    confirm_name = forms.CharField(label="Type the app's name to confirm")

    def __init__(self, *args, app, **kwargs):
        self.app = app
        super().__init__(*args, **kwargs)

    def clean_confirm_name(self):
        if self.cleaned_data["confirm_name"].strip() != self.app.name:
            raise forms.ValidationError("That is not this app's name.", code="name_mismatch")
        return self.cleaned_data["confirm_name"]
