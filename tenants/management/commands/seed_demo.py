import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tenants import services
from tenants.models import App, Tenant

DEMO_EMAIL = "demo@tabcast.local"
DEMO_TENANT = "Demo tenant"
DEMO_APP = "Demo app"


class Command(BaseCommand):
    help = "Create (once) a demo tenant, user and app, and print where to click."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        User = get_user_model()
        user = User.objects.filter(username=DEMO_EMAIL).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(9)
            user = User.objects.create_user(DEMO_EMAIL, DEMO_EMAIL, password)
            tenant = services.create_tenant_for(user, DEMO_TENANT)
        else:
            tenant = services.tenant_of(user) or Tenant.objects.create(name=DEMO_TENANT)
        app = App.objects.filter(tenant=tenant, name=DEMO_APP).first() or services.create_app(
            DEMO_APP, tenant=tenant, client_events=True)
        if not app.demo_enabled:  # the printed demo link must work (older databases had no switch)
            app.demo_enabled = True
            app.save(update_fields=["demo_enabled"])
        w = self.stdout.write
        w("")
        w("Tabcast is starting with a demo tenant:")
        w(f"  Dashboard       {base_url}/dashboard/   (login {DEMO_EMAIL} / "
          f"{password or 'the password printed on first start; reset with manage.py changepassword'})")
        w(f"  Shared-socket demo  {base_url}/demo/?key={app.key}")
        w(f"  API schema      {base_url}/api/schema")
        w(f"  App             id={app.id} key={app.key} secret={app.secret}")
        w(f"  Publish         curl -u {app.key}:{app.secret} -H 'Content-Type: application/json' "
          f"-d '{{\"channel\":\"tabcast-demo\",\"event\":\"hello\",\"data\":{{\"text\":\"hi\"}}}}' {base_url}/publish")
        w("")
