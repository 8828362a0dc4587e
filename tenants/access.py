"""Who may see what: every dashboard view goes through one of these decorators."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from . import services


def tenant_required(view):
    """Logged-in users only; sets ``request.membership`` and ``request.tenant``."""
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.membership = services.ensure_membership(request.user)
        request.tenant = request.membership.tenant
        return view(request, *args, **kwargs)
    return wrapper


def owner_required(view):
    """Team owners only (inviting and removing people); others get 403."""
    @tenant_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.is_owner:
            raise PermissionDenied("Only the team's owner can do this.")
        return view(request, *args, **kwargs)
    return wrapper


def tenant_app(view):
    """Resolve ``app_id`` among the user's tenant's apps only: another tenant's app is a 404."""
    @tenant_required
    @wraps(view)
    def wrapper(request, app_id, *args, **kwargs):
        app = get_object_or_404(services.apps_of(request.tenant), pk=app_id)
        return view(request, app, *args, **kwargs)
    return wrapper
