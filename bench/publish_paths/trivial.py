"""Settings and URLconf in one: Tabcast's settings, but /apps/{id}/events does nothing."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from service.settings import *  # noqa: F403

ROOT_URLCONF = __name__


@csrf_exempt
def accept(request, app_id):
    return JsonResponse({})


urlpatterns = [path("apps/<int:app_id>/events", accept), path("healthz", lambda request: JsonResponse({}))]
