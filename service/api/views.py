"""The HTTP API: Pusher-compatible endpoints under /apps/{app_id}/ and the simple /publish.

Views are thin: ``validation.py`` (through the serializers) checks payloads, ``publishing.py``
publishes, ``engine.on_node`` runs the work on the realtime node. The three publish endpoints
are usually answered before Django by ``fast.py`` with the same functions; these views serve
them when ``TABCAST_FAST_PUBLISH=0`` and document them in the OpenAPI schema.
"""

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from service.realtime.channel_names import Kind, is_cache, kind_of, user_channel
from service.realtime.streams import InvalidPosition

from . import publishing
from . import validation
from .authentication import HasApp, KeySecret, PusherSignature, as_drf, request_body
from .errors import ApiError
from .engine import on_node
from .serializers import (
    BatchSerializer,
    ChannelQuerySerializer,
    ChannelsQuerySerializer,
    EventSerializer,
    HistoryQuerySerializer,
    validate_channel,
)
from .throttling import AppRateThrottle

EMPTY = inline_serializer("Empty", {})
ERROR = inline_serializer("Error", {"error": serializers.CharField(), "code": serializers.IntegerField()})
ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 429: ERROR, 503: ERROR}


class SignedView(APIView):
    authentication_classes = [PusherSignature]
    permission_classes = [HasApp]
    throttle_classes = [AppRateThrottle]


def _payload(request) -> dict:
    """The request's JSON object, by the same rules as the fast path (``validation.json_body``)."""
    return validation.json_body(request_body(request), request.META.get("CONTENT_TYPE"))


def _run(work):
    """Views raise DRF exceptions; the shared publishing code raises ApiError."""
    try:
        return work()
    except ApiError as error:
        raise as_drf(error) from None


class EventsView(SignedView):
    @extend_schema(request=EventSerializer, responses={200: EMPTY, **ERRORS},
                   summary="Trigger an event on up to 100 channels (Pusher)")
    def post(self, request, app_id):
        event = _run(lambda: publishing.event_from(request.auth, _payload(request)))
        infos = on_node(lambda node: publishing.publish(node, request.auth, [event]))
        return Response(publishing.events_answer(event, infos))


class BatchEventsView(SignedView):
    @extend_schema(request=BatchSerializer, responses={200: EMPTY, **ERRORS},
                   summary="Trigger up to 10 events, one channel each (Pusher)")
    def post(self, request, app_id):
        events = _run(lambda: publishing.batch_from(request.auth, _payload(request)))
        infos = on_node(lambda node: publishing.publish(node, request.auth, events))
        return Response(publishing.batch_answer(events, infos))


class ChannelsView(SignedView):
    @extend_schema(parameters=[ChannelsQuerySerializer], responses={200: inline_serializer(
        "Channels", {"channels": serializers.DictField()}), **ERRORS},
        summary="List occupied channels (Pusher)",
        description="At most TABCAST_MAX_CHANNELS_LISTED channels (default 1000), the first in sorted order; "
                    "a longer list is cut there and the answer adds \"truncated\": true and \"limit\".")
    def get(self, request, app_id):
        query = ChannelsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        app, prefix, info = request.auth, query.validated_data["filter_by_prefix"], query.validated_data["info"]

        limit = settings.TABCAST["MAX_CHANNELS_LISTED"]

        async def work(node):
            channels = await node.state.channels(app.id, prefix)
            names = sorted(name for name in channels if kind_of(name) != Kind.USER)
            result = {}
            for name in names[:limit]:
                attrs = {"subscription_count": channels[name]}
                if "user_count" in info:
                    attrs["user_count"] = len(await node.state.members(app.id, name))
                result[name] = attrs
            return result, len(names) > limit

        channels, truncated = on_node(work)
        if truncated:
            # Pusher's API has no paging: the first MAX_CHANNELS_LISTED names in sorted order,
            # and fields the pusher libraries ignore. Narrow the list with filter_by_prefix.
            return Response({"channels": channels, "truncated": True, "limit": limit},
                            headers={"X-Tabcast-Truncated": "true"})
        return Response({"channels": channels})


class ChannelView(SignedView):
    @extend_schema(parameters=[ChannelQuerySerializer], responses={200: inline_serializer(
        "Channel", {"occupied": serializers.BooleanField()}), **ERRORS},
        summary="State of one channel (Pusher)", operation_id="apps_channel_retrieve")
    def get(self, request, app_id, channel_name):
        validate_channel_or_400(channel_name)
        query = ChannelQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        info = query.validated_data["info"]
        if "user_count" in info and kind_of(channel_name) != Kind.PRESENCE:
            raise serializers.ValidationError("user_count is only available for presence channels")
        if "cache" in info and not is_cache(channel_name):
            raise serializers.ValidationError("cache is only available for cache channels")
        app = request.auth

        async def work(node):
            result = await node.channel_info(app, channel_name)
            if "cache" in info:
                cached = await node.state.cache_get(app.id, channel_name)
                result["cache"] = {"data": cached.data, "ttl": cached.ttl} if cached else None
            return result

        return Response(on_node(work))


class ChannelUsersView(SignedView):
    @extend_schema(responses={200: inline_serializer("Users", {"users": serializers.ListField()}), **ERRORS},
                   summary="Users in a presence channel (Pusher)")
    def get(self, request, app_id, channel_name):
        validate_channel_or_400(channel_name)
        if kind_of(channel_name) != Kind.PRESENCE:
            raise serializers.ValidationError("Users can only be listed for presence channels")
        app = request.auth
        members = on_node(lambda node: node.state.members(app.id, channel_name))
        return Response({"users": [{"id": m.user_id} for m in members.values()]})


HISTORY = inline_serializer("ChannelHistory", {
    "channel": serializers.CharField(),
    "history": serializers.BooleanField(help_text="false: the app keeps no history (history_size 0): no messages, "
                                                  "position null, and recovered false when since was given"),
    "position": serializers.CharField(allow_null=True, help_text="The channel stream's position now (offset 0: "
                                                                 "nothing published yet); null without history"),
    "recovered": serializers.BooleanField(required=False, help_text="Only with since: whether every message after "
                                                                    "it was still in the history"),
    "more": serializers.BooleanField(help_text="More messages follow the last one returned: call again with "
                                               "since = its position"),
    "messages": inline_serializer("HistoryMessage", {
        "event": serializers.CharField(), "data": serializers.CharField(allow_null=True),
        "user_id": serializers.CharField(required=False, help_text="The sender of a client event on a presence "
                                                                   "channel"),
        "position": serializers.CharField(help_text="\"<epoch>:<offset>\": this message's place in the stream")},
        many=True, help_text="Oldest first")})


class ChannelHistoryView(SignedView):
    @extend_schema(parameters=[HistoryQuerySerializer], responses={200: HISTORY, **ERRORS},
                   summary="A channel's recent messages, with their positions (Tabcast)",
                   description="docs/recovery.md, \"HTTP history API\". Without since: the last `limit` "
                               "messages. With since: the messages after that position, and whether all of them "
                               "were still in the history (recovered). A since that is not a position "
                               "(<epoch>:<offset>) is a 400.")
    def get(self, request, app_id, channel_name):
        validate_channel_or_400(channel_name)
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, limit = query.validated_data.get("since"), query.validated_data["limit"]
        app = request.auth
        try:
            answer = on_node(lambda node: node.history(app, channel_name, since, limit))
        except InvalidPosition as error:
            raise serializers.ValidationError(f"since: {error}") from None
        if not answer["history"]:  # history off: one shape for every answer, and nothing vouched for
            answer = {**answer, "position": None, **({"recovered": False} if since is not None else {})}
        return Response(answer)


class TerminateConnectionsView(SignedView):
    @extend_schema(request=None, responses={200: EMPTY, **ERRORS},
                   summary="Disconnect every connection signed in as a user (Pusher)")
    def post(self, request, user_id, app_id=None):
        validate_channel_or_400(user_channel(user_id))
        on_node(lambda node: node.terminate_user(request.auth, user_id))
        return Response({})


class PublishView(APIView):
    """POST /publish: the simple API, authenticated with the app key and secret."""

    authentication_classes = [KeySecret]
    permission_classes = [HasApp]
    throttle_classes = [AppRateThrottle]

    @extend_schema(request=inline_serializer("Publish", {
        "channel": serializers.CharField(required=False), "channels": serializers.ListField(required=False),
        "event": serializers.CharField(), "data": serializers.JSONField(),
        "socket_id": serializers.CharField(required=False)}),
        responses={200: inline_serializer("Published", {"ok": serializers.BooleanField(),
                                                        "channels": serializers.IntegerField()}), **ERRORS},
        summary="Publish an event (HTTP Basic key:secret or Bearer key:secret)")
    def post(self, request):
        event = _run(lambda: publishing.simple_event_from(request.auth, _payload(request)))
        on_node(lambda node: publishing.publish(node, request.auth, [event]))
        return Response(publishing.simple_answer(event))


def validate_channel_or_400(name: str) -> None:
    validate_channel(name)


def health(request):
    return JsonResponse({"status": "ok"})
