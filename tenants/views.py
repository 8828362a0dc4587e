from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from . import services


def home(request):
    return redirect("tenants:app_list")


@login_required
def app_list(request):
    tenant = services.tenant_of(request.user)
    apps = services.apps_of(tenant) if tenant else []
    return render(request, "tenants/app_list.html", {"tenant": tenant, "apps": apps})
