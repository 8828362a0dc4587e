"""Who is calling: an app, proven by a Pusher request signature or by its key and secret.

``PusherSignature`` verifies requests the way Pusher does (auth_key, auth_timestamp within
the window, auth_version 1.0, body_md5, auth_signature over the sorted unescaped query).
``KeySecret`` is the simple form for ``/publish``: HTTP Basic ``key:secret`` or
``Authorization: Bearer key:secret``. Every comparison is constant-time.
"""

import base64
import hmac
import time

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from service.realtime import signatures
from service.realtime.tenancy import AppInfo, get_app_sync

from .errors import PayloadTooLarge, UnknownApp


def _app_from_path(request) -> AppInfo | None:
    app_id = request.parser_context["kwargs"].get("app_id") if request.parser_context else None
    if app_id is None:
        return None
    app = get_app_sync(app_id=int(app_id))
    if app is None:
        raise UnknownApp(f"No app with id {app_id}")
    return app


def _check_size(request) -> bytes:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    limit = settings.TABCAST["MAX_REQUEST_BYTES"]
    if length > limit:
        raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {limit}")
    return request._request.body  # noqa: SLF001 - the raw bytes, before DRF parses them


class PusherSignature(authentication.BaseAuthentication):
    def authenticate(self, request):
        body = _check_size(request)
        params = {k.lower(): v for k, v in request.query_params.items()}
        for required in ("auth_key", "auth_timestamp", "auth_version", "auth_signature"):
            if required not in params:
                raise exceptions.AuthenticationFailed(f"Missing {required} query parameter")
        app = _app_from_path(request) or get_app_sync(key=params["auth_key"])
        if app is None:
            raise exceptions.AuthenticationFailed("Unknown auth_key")
        if not hmac.compare_digest(params["auth_key"].encode(), app.key.encode()):
            raise exceptions.AuthenticationFailed("auth_key does not belong to this app")
        if params["auth_version"] != "1.0":
            raise exceptions.AuthenticationFailed("auth_version must be 1.0")
        window = settings.TABCAST["TIMESTAMP_WINDOW"]
        now = int(time.time())
        try:
            timestamp = int(params["auth_timestamp"])
        except ValueError:
            raise exceptions.AuthenticationFailed("auth_timestamp must be an integer") from None
        if abs(now - timestamp) > window:
            raise exceptions.AuthenticationFailed(
                f"Timestamp expired: given timestamp ({timestamp}) not within {window}s of server time ({now})")
        if body or "body_md5" in params:
            if not hmac.compare_digest(params.get("body_md5", "").encode(), signatures.body_md5(body).encode()):
                raise exceptions.AuthenticationFailed("body_md5 does not match the MD5 of the request body")
        to_sign = signatures.request_string_to_sign(request.method, request.path, params)
        if not signatures.matches(app.valid_secrets(), to_sign, params["auth_signature"]):
            raise exceptions.AuthenticationFailed("Invalid signature: expected HMAC-SHA256 hex digest of "
                                                  + to_sign.replace("\n", "\\n"))
        return (None, app)

    def authenticate_header(self, request):
        return 'Pusher realm="tabcast"'


class KeySecret(authentication.BaseAuthentication):
    def authenticate(self, request):
        _check_size(request)
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                credentials = base64.b64decode(credentials.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                raise exceptions.AuthenticationFailed("Malformed Basic credentials") from None
        elif scheme.lower() != "bearer":
            raise exceptions.NotAuthenticated("Send the app key and secret: HTTP Basic key:secret, "
                                              "or Authorization: Bearer key:secret")
        key, sep, secret = credentials.strip().partition(":")
        if not sep:
            raise exceptions.AuthenticationFailed("Credentials must be key:secret")
        app = get_app_sync(key=key)
        if app is None:
            raise exceptions.AuthenticationFailed("Invalid key or secret")
        valid = False
        for candidate in app.valid_secrets():
            valid |= hmac.compare_digest(candidate.encode(), secret.encode())
        if not valid:
            raise exceptions.AuthenticationFailed("Invalid key or secret")
        return (None, app)

    def authenticate_header(self, request):
        return 'Basic realm="tabcast"'


class HasApp(permissions.BasePermission):
    """The request was authenticated as an app (and, for /apps/{id}/ paths, that app)."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, AppInfo):
            raise exceptions.NotAuthenticated("Authentication credentials were not provided")
        if not request.auth.enabled:
            raise exceptions.PermissionDenied("Application is disabled")
        return True
