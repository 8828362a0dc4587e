"""Every API error is JSON: {"error": "<what is wrong>", "code": <HTTP status>}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(Exception):
    """A refusal with an HTTP status and a message, raised by the checks both API paths share."""

    # Fields the JSON body carries besides "error" and "code" (e.g. which quota, when it resets).
    extra: dict = {}

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Payload too large"


class BackendUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The realtime backend is unavailable; retry shortly"


class UnknownApp(exceptions.NotFound):
    default_detail = "Unknown app"


def first_message(detail) -> str:
    """One readable sentence from DRF's error detail (the first field's first error)."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message = first_message(value)
        return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    headers = {k: v for k, v in response.headers.items() if k in ("Retry-After", "WWW-Authenticate")}
    return Response({"error": first_message(response.data.get("detail", response.data)
                                             if isinstance(response.data, dict) and "detail" in response.data
                                             else response.data),
                     "code": response.status_code, **getattr(exc, "extra", {})},
                    status=response.status_code, headers=headers)
