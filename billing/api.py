"""The usage API (session auth, the user's tenant's apps only): live counts and history."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.services import apps_of, tenant_of

from . import usage


class TrafficTotalsSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    bytes = serializers.IntegerField()
    logical_deliveries = serializers.IntegerField()
    logical_bytes = serializers.IntegerField()
    resumes_recovered = serializers.IntegerField(
        help_text="Subscriptions resumed from a position with every missed message replayed (docs/recovery.md)")
    resumes_unrecovered = serializers.IntegerField(
        help_text="Subscriptions told by tabcast:resumed (recovered false) that messages may have been missed")
    stored_messages = serializers.IntegerField(help_text="Messages written to channel history")
    stored_bytes = serializers.IntegerField(help_text="Bytes of the messages written to channel history")


class LiveSerializer(serializers.Serializer):
    app_id = serializers.IntegerField()
    sockets = serializers.IntegerField(help_text="Physical WebSocket connections now")
    tabs = serializers.IntegerField(help_text="Logical clients (browser tabs) now")
    connections_saved = serializers.IntegerField(help_text="tabs - sockets")
    totals = TrafficTotalsSerializer(help_text="Running totals since the live state started")


class UsageCountersSerializer(TrafficTotalsSerializer):
    tab_seconds = serializers.FloatField()
    peak_sockets = serializers.IntegerField()
    peak_tabs = serializers.IntegerField()


class UsagePointSerializer(UsageCountersSerializer):
    start = serializers.DateTimeField(help_text="Start of the hour or day (UTC)")


class SavingSerializer(serializers.Serializer):
    key = serializers.ChoiceField(["connections", "deliveries", "bytes", "polling"])
    title = serializers.CharField()
    value = serializers.FloatField()
    unit = serializers.CharField()
    display = serializers.CharField(help_text="The value formatted for people: 1.2 MB, 3 connections")
    sentence = serializers.CharField()


class UsageSerializer(serializers.Serializer):
    app_id = serializers.IntegerField()
    range = serializers.ChoiceField(list(usage.RANGES))
    granularity = serializers.ChoiceField(["hour", "day"])
    points = UsagePointSerializer(many=True)
    summary = UsageCountersSerializer(help_text="Counters summed over the range; peaks are the highest")
    savings = SavingSerializer(many=True)


class UsageQuerySerializer(serializers.Serializer):
    range = serializers.ChoiceField(list(usage.RANGES), default="24h")


class TenantAppView(APIView):
    """Session-authenticated; ``app_id`` must be an app of the user's tenant (else 404)."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def owned_app_id(self, request, app_id: int) -> int:
        tenant = tenant_of(request.user)
        if tenant is None or not apps_of(tenant).filter(pk=app_id).exists():
            raise NotFound("No such app")
        return app_id


class UsageView(TenantAppView):
    @extend_schema(parameters=[UsageQuerySerializer], responses={200: UsageSerializer}, tags=["dashboard"],
                   summary="Usage history of an app: hourly (24h) or daily (30d), with savings")
    def get(self, request, app_id):
        app_id = self.owned_app_id(request, app_id)
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(UsageSerializer(usage.history(app_id, query.validated_data["range"])).data)


class LiveView(TenantAppView):
    @extend_schema(responses={200: LiveSerializer}, tags=["dashboard"],
                   summary="Live connections (physical and logical) and traffic totals of an app")
    def get(self, request, app_id):
        return Response(LiveSerializer(usage.live(self.owned_app_id(request, app_id))).data)


