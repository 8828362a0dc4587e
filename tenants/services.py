"""The tenants app's public surface: other apps call these, never the models directly."""

from django.db import transaction

from service.realtime.tenancy import AppInfo

from .models import App, Membership, Tenant

OPERATOR_TENANT = "Operator"


def to_info(app: App) -> AppInfo:
    expires = app.previous_secret_expires_at.timestamp() if app.previous_secret_expires_at else 0.0
    return AppInfo(
        id=app.id, key=app.key, secret=app.secret, name=app.name, enabled=app.enabled,
        client_events=app.client_events, max_message_bytes=app.max_message_bytes,
        allowed_origins=app.origins, subscription_count=app.subscription_count,
        max_connections=_connection_limit(app.tenant_id), previous_secret=app.previous_secret,
        previous_secret_expires=expires, tenant_id=app.tenant_id,
    )


def _connection_limit(tenant_id: int) -> int | None:
    from billing.services import connection_limit

    return connection_limit(tenant_id)


def load_app(*, key: str | None = None, app_id: int | None = None) -> AppInfo | None:
    """APP_SOURCE for the realtime engine: one app by key or id, as an AppInfo."""
    query = App.objects.all()
    try:
        app = query.get(key=key) if key is not None else query.get(id=app_id)
    except (App.DoesNotExist, ValueError):
        return None
    return to_info(app)


def tenant_of(user) -> Tenant | None:
    membership = Membership.objects.select_related("tenant").filter(user=user).first()
    return membership.tenant if membership else None


@transaction.atomic
def create_tenant_for(user, name: str) -> Tenant:
    tenant = Tenant.objects.create(name=name)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


def create_app(name: str, *, tenant: Tenant | None = None, client_events: bool = False, **fields) -> App:
    """Create an app; without a tenant it belongs to the operator's own tenant."""
    if tenant is None:
        tenant, _ = Tenant.objects.get_or_create(name=OPERATOR_TENANT)
    return App.objects.create(tenant=tenant, name=name, client_events=client_events, **fields)


def apps_of(tenant: Tenant):
    return App.objects.filter(tenant=tenant)
