"""Who is calling: an app, proven by a Pusher request signature or by its key and secret.

``check_signature`` verifies requests the way Pusher does (auth_key, auth_timestamp within
the window, auth_version 1.0, body_md5, auth_signature over the sorted unescaped query).
``parse_key_secret`` / ``check_secret`` are the simple form for ``/publish``: HTTP Basic
``key:secret`` or ``Authorization: Bearer key:secret``. Every comparison is constant-time.
The checks are plain functions so the DRF classes below and the in-loop fast path
(``fast.py``) run exactly the same code.

Strangers' input is bounded before anything is looked up: an ``Authorization`` header over
``MAX_AUTHORIZATION_HEADER`` characters, a malformed ``auth_key`` or ``auth_signature`` are
refused with 401 at once, and keys that cannot exist never reach the app cache
(``tenancy.valid_key``). For ``/apps/{id}/...`` an unknown app id gets exactly the answer a
wrong signature gets, so app ids cannot be enumerated: the request-only checks (version,
timestamp, body MD5) come first, then every app-dependent failure is the same 401.
"""

import base64
import hmac
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import authentication, exceptions, permissions

from service.realtime import signatures
from service.realtime.tenancy import AppInfo, get_app_sync, valid_app_id, valid_key

from .errors import ApiError, PayloadTooLarge, UnknownApp

SIGNED_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")
# "Basic " + base64("<key up to 100>:<secret>") is a few hundred characters; nothing longer is
# a credential, and nothing longer is parsed, decoded or looked up.
MAX_AUTHORIZATION_HEADER = 1024
MAX_SIGNATURE_LENGTH = 128  # a hex HMAC-SHA256 is 64
NO_CREDENTIALS = "Send the app key and secret: HTTP Basic key:secret, or Authorization: Bearer key:secret"
_NOBODY = AppInfo(id=0, key="", secret="\x00not-a-secret")  # signs for unknown apps, so they cost the same


def check_body_size(length: int) -> None:
    limit = settings.TABCAST["MAX_REQUEST_BYTES"]
    if length > limit:
        raise ApiError(413, f"Request body is {length} bytes; the limit is {limit}")


def request_body(request) -> bytes:
    """The raw body of a DRF request, within MAX_REQUEST_BYTES (413 otherwise)."""
    try:
        body = request._request.body  # noqa: SLF001 - the raw bytes; DRF's parsers are not used
    except RequestDataTooBig:
        raise ApiError(413, f"Request body is over the limit of {settings.TABCAST['MAX_REQUEST_BYTES']} bytes") \
            from None
    check_body_size(len(body))
    return body


def signed_params(query: dict[str, str]) -> dict[str, str]:
    """The query with lowercased keys; refuses a request missing a signing parameter."""
    params = {k.lower(): v for k, v in query.items()}
    for required in SIGNED_PARAMS:
        if required not in params:
            raise ApiError(401, f"Missing {required} query parameter")
    if not valid_key(params["auth_key"]):
        raise ApiError(401, "auth_key is not a valid app key")
    signature = params["auth_signature"]
    if len(signature) > MAX_SIGNATURE_LENGTH or not signature.isascii():
        raise ApiError(401, "auth_signature must be a hex HMAC-SHA256 digest")
    return params


def app_id_of(value) -> int | None:
    """The app id of an ``/apps/{id}/`` path segment, or None if no app can have it."""
    if isinstance(value, str):
        if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
            return None
        value = int(value)
    return value if valid_app_id(value) else None


def check_signature(app: AppInfo | None, method: str, path: str, params: dict[str, str], body: bytes) -> AppInfo:
    """The app, if ``params`` carry a valid Pusher signature of this request by it.

    ``app`` is None when no app has the path's id (or the auth_key): that answer is the same
    as for a wrong key or signature, and comes after the same request checks.
    """
    check_request(params, body)
    to_sign = signatures.request_string_to_sign(method, path, params)
    key_ok = app is not None and hmac.compare_digest(params["auth_key"].encode(), app.key.encode())
    signature_ok = signatures.matches((app or _NOBODY).valid_secrets(), to_sign, params["auth_signature"])
    if not (key_ok and signature_ok):
        raise ApiError(401, "Invalid signature: expected HMAC-SHA256 hex digest of " + to_sign.replace("\n", "\\n"))
    return app


def check_request(params: dict[str, str], body: bytes) -> None:
    """The signing checks that depend on the request alone, not on which app it names."""
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


def parse_key_secret(header: str) -> tuple[str, str]:
    """(key, secret) from ``Basic base64(key:secret)`` or ``Bearer key:secret``."""
    if len(header) > MAX_AUTHORIZATION_HEADER:
        raise ApiError(401, f"Authorization header is longer than {MAX_AUTHORIZATION_HEADER} characters")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            credentials = base64.b64decode(credentials.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(401, "Malformed Basic credentials") from None
    elif scheme.lower() != "bearer":
        raise ApiError(401, NO_CREDENTIALS)
    key, sep, secret = credentials.strip().partition(":")
    if not sep:
        raise ApiError(401, "Credentials must be key:secret")
    return key, secret


def check_secret(app: AppInfo | None, secret: str) -> AppInfo:
    """The app if ``secret`` is one of its valid secrets (None: an unknown or malformed key)."""
    valid = False
    for candidate in (app or _NOBODY).valid_secrets():
        valid |= hmac.compare_digest(candidate.encode(), secret.encode())
    valid &= app is not None
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
    if error.status == 401:
        return exceptions.AuthenticationFailed(error.message)
    other = exceptions.APIException(error.message)
    other.status_code = error.status  # 415, 429, ...: the handler answers with this status
    return other


def _signed_app(request, params: dict[str, str]) -> AppInfo | None:
    """The app a signed request names: by the path's id under /apps/{id}/, else by auth_key."""
    kwargs = request.parser_context["kwargs"] if request.parser_context else {}
    if kwargs.get("app_id") is None:
        return get_app_sync(key=params["auth_key"])
    app_id = app_id_of(kwargs["app_id"])
    return get_app_sync(app_id=app_id) if app_id is not None else None


class PusherSignature(authentication.BaseAuthentication):
    def authenticate(self, request):
        try:
            check_body_size(int(request.META.get("CONTENT_LENGTH") or 0))
            body = request_body(request)
            params = signed_params(request.query_params.dict())
            return (None, check_signature(_signed_app(request, params), request.method, request.path, params, body))
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
                raise exceptions.NotAuthenticated(NO_CREDENTIALS)
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
