"""Fuzz: Schemathesis drives every operation of the server's own OpenAPI schema (/api/schema,
fetched from the live server) with schema-conforming and schema-violating requests.

Half of the requests to the signed ``/apps/...`` operations are signed with the app's real key
and secret (and aimed at its real id), so generated bodies and query strings reach validation
instead of stopping at the signature check; ``/publish`` gets the app's credentials likewise.
Checks: never a 5xx (Schemathesis' ``not_a_server_error``); each status is one the schema
lists for the operation (``status_code_conformance``); refusals are JSON
``{"error": str, "code": status}``; the process keeps serving a subscriber. (The dashboard's
JSON endpoints in the schema, behind a session login, are held to "never a 5xx" only.)
"""

import base64
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
import schemathesis
from hypothesis import given, note
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from .conftest import budget
from .http import signed_target

API_PREFIXES = ("/apps/", "/users/", "/publish")


def send(server, case, sign: bool) -> requests.Response:
    """Send a generated case, signed like a Pusher library if asked."""
    app = server.app
    if sign and "app_id" in (case.path_parameters or {}):
        case.path_parameters["app_id"] = app["app_id"]
    kwargs = case.as_transport_kwargs(base_url=server.http)
    method = kwargs.pop("method")
    prepared = requests.Request(method, kwargs.pop("url"), headers=kwargs.pop("headers", None),
                                params=kwargs.pop("params", None), json=kwargs.pop("json", None),
                                data=kwargs.pop("data", None), cookies=kwargs.pop("cookies", None)).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    if sign and url.path.startswith(("/apps/", "/users/")):
        extra = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if not k.lower().startswith("auth_")]
        target = signed_target(app, method, unquote(url.path), body, extra)
        prepared.url = f"{server.http}{url.path}{target[len(unquote(url.path)):]}"
    elif sign and url.path == "/publish":
        prepared.headers["Authorization"] = "Basic " + base64.b64encode(
            f"{app['key']}:{app['secret']}".encode()).decode()
    note(f"{method} {prepared.url[:400]} headers={dict(prepared.headers)} body={body[:300]!r}")
    with requests.Session() as session:
        return session.send(prepared, timeout=15, allow_redirects=False)


def run_schema(server, liveness, mode, examples: int) -> None:
    schema = schemathesis.openapi.from_url(f"{server.http}/api/schema")

    @budget(examples)
    @given(case=schema.as_strategy(generation_mode=mode), sign=st.booleans())
    def run(case, sign):
        liveness.begin()
        response = send(server, case, sign)
        note(f"-> {response.status_code} {response.content[:300]!r}")
        # The dashboard's JSON endpoints (session login, not app credentials) are held to "no 5xx".
        api = case.path.startswith(API_PREFIXES)
        case.validate_response(response, checks=[not_a_server_error] + ([status_code_conformance] if api else []))
        if api and response.status_code >= 400:
            if response.status_code == 404 and response.headers.get("content-type", "").startswith("text/html"):
                pass  # a path no API route matches (app id not a number, empty segment): the site's 404 page
            else:
                body = response.json()
                assert isinstance(body.get("error"), str) and body.get("code") == response.status_code, body
        liveness.check()

    run()


def test_schema_conforming_requests(fuzz_server, liveness):
    run_schema(fuzz_server, liveness, schemathesis.GenerationMode.POSITIVE, 150)


def test_schema_violating_requests(fuzz_server, liveness):
    run_schema(fuzz_server, liveness, schemathesis.GenerationMode.NEGATIVE, 150)
