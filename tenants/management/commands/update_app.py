import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import App
from tenants.origins import clean_origins
from tenants.services import history_bounds

EDITABLE = {"name": str, "enabled": bool, "client_events": bool, "subscription_count": bool,
            "max_message_bytes": int, "allowed_origins": str, "webhook_url": str, "demo_enabled": bool,
            "history_size": int, "history_ttl": int}


class Command(BaseCommand):
    help = "Change an app's settings: update_app APP_ID field=value ... (bools: true/false)."

    def add_arguments(self, parser):
        parser.add_argument("app_id", type=int)
        parser.add_argument("changes", nargs="*", metavar="field=value")
        parser.add_argument("--rotate-secret", action="store_true")

    def handle(self, *args, app_id, changes, rotate_secret, **options):
        try:
            app = App.objects.get(id=app_id)
        except App.DoesNotExist:
            raise CommandError(f"No app {app_id}") from None
        for change in changes:
            field, _, raw = change.partition("=")
            if field not in EDITABLE:
                raise CommandError(f"Cannot change {field!r}; editable: {', '.join(EDITABLE)}")
            kind = EDITABLE[field]
            value = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw.replace("\\n", "\n"))
            if field == "allowed_origins":  # the same rules as the dashboard: it ends up in a CSP header
                try:
                    value = clean_origins(value)
                except ValidationError as error:
                    raise CommandError(" ".join(error.messages)) from None
            if field in ("history_size", "history_ttl"):  # the dashboard's bounds: the plan's, 1 s at least
                max_size, max_ttl = history_bounds(app.tenant_id)
                lowest, highest = (0, max_size) if field == "history_size" else (1, max_ttl)
                if not lowest <= value <= highest:
                    raise CommandError(f"{field} must be from {lowest} to {highest} for this app's plan")
            setattr(app, field, value)
        if rotate_secret:
            app.rotate_secret()
        app.save()
        self.stdout.write(json.dumps({"app_id": app.id, "key": app.key, "secret": app.secret,
                                      "enabled": app.enabled, "client_events": app.client_events,
                                      "history_size": app.history_size, "history_ttl": app.history_ttl}))
