"""Validation of publish requests, shared by the Pusher endpoints and /publish."""

import re

import orjson
from django.conf import settings
from rest_framework import serializers

from service.realtime import channel_names
from service.realtime.channel_names import Kind, kind_of

from .errors import PayloadTooLarge

SOCKET_ID_RE = re.compile(r"^\d+\.\d+$")
INFO_ATTRIBUTES = {"user_count", "subscription_count"}
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:")


def validate_channel(name) -> str:
    reason = channel_names.invalid_reason(name, settings.TABCAST["MAX_CHANNEL_NAME"])
    if reason:
        raise serializers.ValidationError(f"{reason}: {str(name)[:60]!r}")
    return name


def parse_info(value: str, allowed=INFO_ATTRIBUTES) -> list[str]:
    attributes = [a for a in (value or "").split(",") if a]
    unknown = [a for a in attributes if a not in allowed]
    if unknown:
        raise serializers.ValidationError(f"Unknown info attribute(s): {', '.join(unknown)}")
    return attributes


class EventSerializer(serializers.Serializer):
    """One event to one or more channels (POST /apps/{id}/events, POST /publish)."""

    name = serializers.CharField(max_length=200, help_text="Event name (not pusher: or pusher_internal:)")
    data = serializers.JSONField(help_text="Event payload: a string (usually JSON); other JSON values are encoded")
    channels = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False,
                                     help_text="1-100 channel names")
    channel = serializers.CharField(required=False, trim_whitespace=False, help_text="A single channel")
    socket_id = serializers.CharField(required=False, help_text="Exclude this connection")
    info = serializers.CharField(required=False, help_text="user_count,subscription_count")

    def validate_name(self, value):
        if value.startswith(RESERVED_EVENT_PREFIXES):
            raise serializers.ValidationError("Event names starting with pusher: are reserved")
        return value

    def validate_socket_id(self, value):
        if not SOCKET_ID_RE.match(value):
            raise serializers.ValidationError("socket_id must look like 123.456")
        return value

    def validate_info(self, value):
        return parse_info(value)

    def validate(self, attrs):
        channels = attrs.get("channels")
        if channels is None:
            channels = [attrs["channel"]] if "channel" in attrs else []
        if not channels:
            raise serializers.ValidationError("Give 'channels' (a list) or 'channel'")
        limit = settings.TABCAST["MAX_CHANNELS_PER_PUBLISH"]
        if len(channels) > limit:
            raise serializers.ValidationError(f"At most {limit} channels per event")
        channels = list(dict.fromkeys(validate_channel(c) for c in channels))
        if len(channels) > 1 and any(kind_of(c) == Kind.ENCRYPTED for c in channels):
            raise serializers.ValidationError("Encrypted channels cannot be published to with other channels")
        data = attrs["data"]
        data = data if isinstance(data, str) else orjson.dumps(data).decode()
        app = self.context["app"]
        size = len(data.encode())
        if size > app.max_message_bytes:
            raise PayloadTooLarge(f"Event data is {size} bytes; the limit for this app is {app.max_message_bytes}")
        return {"name": attrs["name"], "data": data, "channels": channels,
                "socket_id": attrs.get("socket_id"), "info": attrs.get("info", [])}


class BatchItemSerializer(EventSerializer):
    channels = None  # a batch item names exactly one channel

    def validate(self, attrs):
        if "channel" not in attrs:
            raise serializers.ValidationError("Each batch event needs one 'channel'")
        return super().validate(attrs)


class BatchSerializer(serializers.Serializer):
    batch = BatchItemSerializer(many=True)

    def validate_batch(self, value):
        limit = settings.TABCAST["MAX_BATCH_EVENTS"]
        if not value:
            raise serializers.ValidationError("The batch is empty")
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} events per batch")
        return value


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
