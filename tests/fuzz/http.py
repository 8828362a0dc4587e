"""Raw HTTP requests for the fuzz tests, and Pusher request signing with knobs to break it."""

import hashlib
import hmac
import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import quote


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, target: str, body: bytes = b"", headers: dict | None = None,
            timeout: float = 15) -> Answer:
    """One request on its own connection: every byte of the target and headers as given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        sent = {k.lower() for k in (headers or {})}
        if "host" not in sent:
            connection.putheader("Host", f"127.0.0.1:{port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value.encode("latin-1", "replace") if isinstance(value, str) else value)
        if "content-length" not in sent and (body or method == "POST"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def encode_query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def signed_target(app: dict, method: str, path: str, body: bytes, extra: list[tuple[str, str]] = (),
                  mode: str = "valid") -> str:
    """``path?query`` signed as the Pusher libraries sign (or broken as ``mode`` says)."""
    params = dict((k.lower(), v) for k, v in extra)
    params.update({"auth_key": app["key"], "auth_timestamp": str(int(time.time())), "auth_version": "1.0"})
    if body:
        params["body_md5"] = hashlib.md5(body).hexdigest()
    if mode == "old-timestamp":
        params["auth_timestamp"] = str(int(time.time()) - 3600)
    elif mode == "bad-md5":
        params["body_md5"] = "0" * 32
    elif mode == "wrong-key":
        params["auth_key"] = "nokey" + app["key"][5:]
    elif mode == "bad-version":
        params["auth_version"] = "2.0"
    elif mode == "junk-timestamp":
        params["auth_timestamp"] = "1e9"
    to_sign = f"{method}\n{path}\n" + "&".join(f"{k}={params[k]}" for k in sorted(params))
    signature = hmac.new(app["secret"].encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if mode == "bad-signature":
        signature = "f" * 64
    if mode != "missing-signature":
        params["auth_signature"] = signature
    if mode == "unsigned":
        params = dict((k.lower(), v) for k, v in extra)
    return path + "?" + encode_query(list(params.items()))
