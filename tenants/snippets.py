"""Getting-started code for an app, filled with its credentials and the address the user reached us on."""

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

SECRET_PLACEHOLDER = "YOUR_APP_SECRET"
EXAMPLE_CHANNEL = "my-channel"
EXAMPLE_EVENT = "my-event"


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach this Tabcast: scheme, host name and port."""

    scheme: str
    hostname: str
    port: int

    @classmethod
    def from_request(cls, request) -> "Endpoint":
        """The endpoint as the browser sees it (Host header, already checked against ALLOWED_HOSTS)."""
        scheme = request.scheme
        parts = urlsplit(f"//{request.get_host()}")
        default_port = 443 if scheme == "https" else 80
        return cls(scheme, parts.hostname or "localhost", parts.port or default_port)

    @property
    def ssl(self) -> bool:
        return self.scheme == "https"

    @property
    def netloc(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.ssl else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def script_tag(endpoint: Endpoint) -> str:
    return f'<script src="{endpoint.base_url}/sdk/v1/tabcast.js"></script>'


def browser(app, endpoint: Endpoint) -> str:
    """The SDK script tag plus a subscribe-and-bind example (pusher-js-like API)."""
    return "\n".join([
        script_tag(endpoint),
        "<script>",
        # forceTLS pins ws:// or wss:// to how Tabcast is served, whatever the customer's page uses.
        f"  const tabcast = new Tabcast({json.dumps(app.key)}, {{ host: {json.dumps(endpoint.netloc)}, "
        f"forceTLS: {json.dumps(endpoint.ssl)} }});",
        f"  const channel = tabcast.subscribe({json.dumps(EXAMPLE_CHANNEL)});",
        f"  channel.bind({json.dumps(EXAMPLE_EVENT)}, (data) => console.log(data));",
        "</script>",
    ])


def curl(app, endpoint: Endpoint, secret: str | None = None) -> str:
    """POST /publish with Basic key:secret."""
    body = json.dumps({"channel": EXAMPLE_CHANNEL, "event": EXAMPLE_EVENT, "data": {"hello": "world"}},
                      separators=(",", ":"))
    return (f"curl -u {app.key}:{secret or SECRET_PLACEHOLDER} -H 'Content-Type: application/json' "
            f"-d '{body}' {endpoint.base_url}/publish")


def python(app, endpoint: Endpoint, secret: str | None = None) -> str:
    """The official ``pusher`` server library pointed at this Tabcast."""
    return "\n".join([
        "import pusher",
        "",
        "client = pusher.Pusher(",
        f"    app_id={json.dumps(str(app.id))},",
        f"    key={json.dumps(app.key)},",
        f"    secret={json.dumps(secret or SECRET_PLACEHOLDER)},",
        f"    host={json.dumps(endpoint.hostname)},",
        f"    port={endpoint.port},",
        f"    ssl={endpoint.ssl},",
        ")",
        f"client.trigger({json.dumps(EXAMPLE_CHANNEL)}, {json.dumps(EXAMPLE_EVENT)}, {{\"hello\": \"world\"}})",
    ])


def all_for(app, endpoint: Endpoint, secret: str | None = None) -> dict[str, str]:
    """Every snippet for the getting-started panel; the secret only when the user revealed it."""
    return {
        "script_tag": script_tag(endpoint),
        "browser": browser(app, endpoint),
        "curl": curl(app, endpoint, secret),
        "python": python(app, endpoint, secret),
    }
