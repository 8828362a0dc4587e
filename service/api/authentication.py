"""Who is calling: an app, proven by a Pusher request signature or by its key and secret.

``check_signature`` verifies requests the way Pusher does (auth_key, auth_timestamp within
the window, auth_version 1.0, body_md5, auth_signature over the sorted unescaped query).
``parse_key_secret`` / ``check_secret`` are the simple form for ``/publish``: HTTP Basic
``key:secret`` or ``Authorization: Bearer key:secret``. Every comparison is constant-time.
The checks are plain functions so the DRF classes below and the in-loop fast path
(``fast.py``) run exactly the same code.
"""

import base64
import hmac
import time

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from service.realtime import signatures
from service.realtime.tenancy import AppInfo, get_app_sync

from .errors import ApiError, PayloadTooLarge, UnknownApp

SIGNED_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")


def check_body_size(length: int) -> None:
    limit = settings.TABCAST["MAX_REQUEST_BYTES"]
    if length > limit:
        raise ApiError(413, f"Request body is {length} bytes; the limit is {limit}")


def signed_params(query: dict[str, str]) -> dict[str, str]:
    """The query with lowercased keys; refuses a request missing a signing parameter."""
    params = {k.lower(): v for k, v in query.items()}
    for required in SIGNED_PARAMS:
        if required not in params:
            raise ApiError(401, f"Missing {required} query parameter")
    return params


def check_signature(app: AppInfo | None, method: str, path: str, params: dict[str, str], body: bytes) -> AppInfo:
    """The app, if ``params`` carry a valid Pusher signature of this request by it."""
    if app is None:
        raise ApiError(401, "Unknown auth_key")
    if not hmac.compare_digest(params["auth_key"].encode(), app.key.encode()):
        raise ApiError(401, "auth_key does not belong to this app")
    if params["auth_version"] != "1.0":
        raise ApiError(401, "auth_version must be 1.0")
    window = settings.TABCAST["TIMESTAMP_WINDOW"]
    now = int(time.time())
    try:
        timestamp = int(params["auth_timestamp"])
    except ValueError:
        raise ApiError(401, "auth_timestamp must be an integer") from None
    if abs(now - timestamp) > window:
        raise ApiError(401, f"Timestamp expired: given timestamp ({timestamp}) not within {window}s "
                            f"of server time ({now})")
    if body or "body_md5" in params:
        if not hmac.compare_digest(params.get("body_md5", "").encode(), signatures.body_md5(body).encode()):
            raise ApiError(401, "body_md5 does not match the MD5 of the request body")
    to_sign = signatures.request_string_to_sign(method, path, params)
    if not signatures.matches(app.valid_secrets(), to_sign, params["auth_signature"]):
        raise ApiError(401, "Invalid signature: expected HMAC-SHA256 hex digest of " + to_sign.replace("\n", "\\n"))
    return app


def parse_key_secret(header: str) -> tuple[str, str]:
    """(key, secret) from ``Basic base64(key:secret)`` or ``Bearer key:secret``."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            credentials = base64.b64decode(credentials.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(401, "Malformed Basic credentials") from None
    elif scheme.lower() != "bearer":
        raise ApiError(401, "Send the app key and secret: HTTP Basic key:secret, or Authorization: Bearer key:secret")
    key, sep, secret = credentials.strip().partition(":")
    if not sep:
        raise ApiError(401, "Credentials must be key:secret")
    return key, secret


def check_secret(app: AppInfo | None, secret: str) -> AppInfo:
    valid = False
    for candidate in app.valid_secrets() if app is not None else ():
        valid |= hmac.compare_digest(candidate.encode(), secret.encode())
    if not valid:
        raise ApiError(401, "Invalid key or secret")
    return app


def check_enabled(app: AppInfo) -> None:
    if not app.enabled:
        raise ApiError(403, "Application is disabled")


def as_drf(error: ApiError) -> exceptions.APIException:
    """The DRF exception DRF answers with the same status and message."""
    if error.status == 404:
        return UnknownApp(error.message)
    if error.status == 413:
        return PayloadTooLarge(error.message)
    if error.status == 403:
        return exceptions.PermissionDenied(error.message)
    if error.status == 400:
        return exceptions.ValidationError(error.message)
    return exceptions.AuthenticationFailed(error.message)


def _path_app(request) -> AppInfo | None:
    app_id = request.parser_context["kwargs"].get("app_id") if request.parser_context else None
    if app_id is None:
        return None
    app = get_app_sync(app_id=int(app_id))
    if app is None:
        raise ApiError(404, f"No app with id {app_id}")
    return app


class PusherSignature(authentication.BaseAuthentication):
    def authenticate(self, request):
        try:
            check_body_size(int(request.META.get("CONTENT_LENGTH") or 0))
            body = request._request.body  # noqa: SLF001 - the raw bytes, before DRF parses them
            params = signed_params(request.query_params.dict())
            app = _path_app(request) or get_app_sync(key=params["auth_key"])
            return (None, check_signature(app, request.method, request.path, params, body))
        except ApiError as error:
            raise as_drf(error) from None

    def authenticate_header(self, request):
        return 'Pusher realm="tabcast"'


class KeySecret(authentication.BaseAuthentication):
    def authenticate(self, request):
        try:
            check_body_size(int(request.META.get("CONTENT_LENGTH") or 0))
            header = request.META.get("HTTP_AUTHORIZATION", "")
            if not header:
                raise exceptions.NotAuthenticated(
                    "Send the app key and secret: HTTP Basic key:secret, or Authorization: Bearer key:secret")
            key, secret = parse_key_secret(header)
            return (None, check_secret(get_app_sync(key=key), secret))
        except ApiError as error:
            raise as_drf(error) from None

    def authenticate_header(self, request):
        return 'Basic realm="tabcast"'


class HasApp(permissions.BasePermission):
    """The request was authenticated as an app (and, for /apps/{id}/ paths, that app)."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, AppInfo):
            raise exceptions.NotAuthenticated("Authentication credentials were not provided")
        try:
            check_enabled(request.auth)
        except ApiError as error:
            raise as_drf(error) from None
        return True
