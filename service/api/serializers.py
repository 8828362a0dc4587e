"""The publish and query payloads as DRF serializers: they document the API in the OpenAPI
schema, and validate through ``validation.py``, the one implementation of the rules."""

from rest_framework import serializers

from . import validation
from .errors import ApiError, PayloadTooLarge


def _as_drf(error: ApiError) -> Exception:
    if error.status == 413:
        return PayloadTooLarge(error.message)
    return serializers.ValidationError(error.message)


def validate_channel(name) -> str:
    try:
        return validation.channel(name, field="")
    except ApiError as error:
        raise _as_drf(error) from None


def parse_info(value: str, allowed=validation.PUBLISH_INFO) -> list[str]:
    try:
        return validation.info(value, allowed, field="")
    except ApiError as error:
        raise _as_drf(error) from None


class EventSerializer(serializers.Serializer):
    """One event to one or more channels (POST /apps/{id}/events, POST /publish)."""

    name = serializers.CharField(max_length=200, help_text="Event name (not pusher: or pusher_internal:)")
    data = serializers.JSONField(help_text="Event payload: a string (usually JSON); other JSON values are encoded")
    channels = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False,
                                     help_text="1-100 channel names")
    channel = serializers.CharField(required=False, trim_whitespace=False, help_text="A single channel")
    socket_id = serializers.CharField(required=False, help_text="Exclude this connection")
    info = serializers.CharField(required=False, help_text="user_count,subscription_count")

    def to_internal_value(self, data):
        try:
            return validation.event(self.context["app"], data)
        except ApiError as error:
            raise _as_drf(error) from None


class BatchItemSerializer(EventSerializer):
    channels = None  # a batch item names exactly one channel


class BatchSerializer(serializers.Serializer):
    batch = BatchItemSerializer(many=True, help_text="1-10 events, one channel each")

    def to_internal_value(self, data):
        try:
            return {"batch": validation.batch(self.context["app"], data)}
        except ApiError as error:
            raise _as_drf(error) from None


class ChannelsQuerySerializer(serializers.Serializer):
    filter_by_prefix = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    info = serializers.CharField(required=False, default="", allow_blank=True)

    def validate(self, attrs):
        attrs["info"] = parse_info(attrs["info"], {"user_count", "subscription_count"})
        if "user_count" in attrs["info"] and not attrs["filter_by_prefix"].startswith("presence-"):
            raise serializers.ValidationError("info=user_count needs filter_by_prefix=presence-")
        return attrs


class ChannelQuerySerializer(serializers.Serializer):
    info = serializers.CharField(required=False, default="", allow_blank=True)

    def validate_info(self, value):
        return parse_info(value, {"user_count", "subscription_count", "cache"})


MAX_HISTORY_LIMIT = 1000  # messages per history answer; page on with since=<last position>


class HistoryQuerySerializer(serializers.Serializer):
    """GET /apps/{id}/channels/{name}/history (docs/recovery.md, "HTTP history API")."""

    since = serializers.CharField(
        required=False, max_length=100, trim_whitespace=False,
        help_text="A position (\"<epoch>:<offset>\") from a message or subscription_succeeded: the answer holds "
                  "the messages after it. Without it: the last `limit` messages.")
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=MAX_HISTORY_LIMIT,
                                     help_text=f"At most this many messages (1-{MAX_HISTORY_LIMIT}, default 100)")

    def validate(self, attrs):
        # DRF reads an empty optional query parameter as absent; "since=" is more likely a lost
        # position than a wish for the latest messages, so it is refused, as is "limit=".
        for name in ("since", "limit"):
            if self.initial_data.get(name) == "":
                raise serializers.ValidationError({name: "This field may not be blank."})
        return attrs
