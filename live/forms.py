"""Dashboard input: the debug console's test event."""

from django import forms
from django.conf import settings

from service.realtime.channel_names import invalid_reason


class ChannelNameField(forms.CharField):
    """A channel name, checked as the protocol checks it (channel_names.invalid_reason)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=settings.TABCAST["MAX_CHANNEL_NAME"], **kwargs)

    def clean(self, value):
        channel = super().clean(value)
        reason = invalid_reason(channel, settings.TABCAST["MAX_CHANNEL_NAME"])
        if reason:
            raise forms.ValidationError(reason)
        return channel


class TestEventForm(forms.Form):
    channel = ChannelNameField(initial="my-channel")
    event = forms.CharField(max_length=settings.TABCAST["MAX_EVENT_NAME"], initial="test-event")
    data = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, initial='{"hello": "world"}',
                           help_text="Sent as is: JSON or any text")

    def __init__(self, *args, max_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    def clean_event(self):
        event = self.cleaned_data["event"]
        if event.startswith("pusher:") or event.startswith("pusher_internal:"):
            raise forms.ValidationError("pusher: events are reserved for the protocol")
        return event

    def clean_data(self):
        data = self.cleaned_data["data"]
        if len(data.encode()) > self.max_bytes:
            raise forms.ValidationError(f"Data is over this app's limit of {self.max_bytes} bytes")
        return data


class ChannelHistoryForm(forms.Form):
    """The console's history lookup: the last messages of one channel (docs/recovery.md)."""

    LIMIT = 50

    channel = ChannelNameField(help_text=f"The last {LIMIT} messages kept for this channel, with their positions")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "history_%s")  # the console's test-event form has a "channel" too
        super().__init__(*args, **kwargs)
