"""Account security defaults (issue 9, finding 6): a reset link is an account takeover token, so
it goes only to the user's mailbox, never to a log; without email the server says so.

Real servers with DEBUG off, as deployed; email goes to a small SMTP server run by the test.
"""

import json
import os
import re
import socketserver
import subprocess
import threading
import uuid

import pytest
import requests
from django.core import mail
from django.urls import reverse

from tests.support.processes import PYTHON, ROOT, TabcastProcess, free_port, wait_until
from tests.support.teams import PASSWORD

RESET_LINK = re.compile(r"/password-reset/([^/\s]+)/([^/\s]+)/")


class SmtpServer:
    """Just enough SMTP (no TLS, no auth) to receive what Django's SMTP backend sends."""

    def __init__(self):
        self.messages: list[str] = []
        received = self.messages

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 test ESMTP\r\n")
                while line := self.rfile.readline():
                    command = line.decode().strip().upper()
                    if command.startswith("DATA"):
                        self.wfile.write(b"354 go on\r\n")
                        body = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            body.append(data.decode())
                        received.append("".join(body))
                        self.wfile.write(b"250 queued\r\n")
                    elif command.startswith("QUIT"):
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:  # EHLO, HELO, MAIL, RCPT, RSET, NOOP
                        self.wfile.write(b"250 ok\r\n")

        self.port = free_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=10, allow_redirects=False)

    def post(self, path: str, data: dict) -> requests.Response:
        if "csrftoken" not in self.session.cookies:
            self.get("/login/")
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self.session.post(f"{self.base}{path}", data=data, timeout=10, allow_redirects=False)


def sign_up(server) -> str:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    assert Browser(server.http).post("/signup/", {"email": email, "password": PASSWORD}).status_code == 302
    return email


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_with_email(smtp):
    # The most verbose logging there is: a token must not show up at any level.
    process = TabcastProcess(extra_env={"TABCAST_EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}?tls=0",
                                        "TABCAST_LOG_LEVEL": "DEBUG", "TABCAST_DEBUG": "0"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def server_without_email():
    env = {"TABCAST_LOG_LEVEL": "DEBUG", "TABCAST_DEBUG": "0"}
    process = TabcastProcess(extra_env=env)
    for name in ("TABCAST_EMAIL_URL", "TABCAST_EMAIL_BACKEND", "TABCAST_SMTP_HOST"):
        process.env.pop(name, None)
    yield process.start()
    process.stop()


def test_a_reset_flow_mails_the_link_and_never_logs_the_token(server_with_email, smtp):
    server = server_with_email
    email = sign_up(server)
    browser = Browser(server.http)
    sent = browser.post("/password-reset/", {"email": email})
    assert sent.status_code == 302 and sent.headers["Location"] == "/password-reset/sent/"
    message = wait_until(lambda: next((m for m in smtp.messages if email in m), None), 10, what="the reset email")
    uid, token = RESET_LINK.search(message).groups()

    # The whole flow: open the link, choose a new password, log in with it.
    opened = browser.get(f"/password-reset/{uid}/{token}/")
    assert opened.status_code == 302  # Django moves the token out of the URL, into the session
    form = browser.get(opened.headers["Location"])
    assert form.status_code == 200 and "new_password1" in form.text
    new_password = "another horse battery"
    done = browser.post(opened.headers["Location"], {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302 and done.headers["Location"] == "/password-reset/done/"
    assert Browser(server.http).post("/login/", {"username": email, "password": new_password}).status_code == 302

    log = server.log_path.read_text()
    assert " DEBUG " in log  # the server did log, at its most verbose level
    assert token not in log
    assert not RESET_LINK.search(log), RESET_LINK.search(log)


def test_without_email_the_reset_page_says_so_and_no_token_is_made_or_logged(server_without_email):
    server = server_without_email
    email = sign_up(server)
    browser = Browser(server.http)
    page = browser.get("/password-reset/")
    assert page.status_code == 503 and "Email is not configured on this server" in page.text
    sent = browser.post("/password-reset/", {"email": email})
    assert sent.status_code == 503 and "Email is not configured on this server" in sent.text
    assert "manage.py changepassword" in sent.text
    log = server.log_path.read_text()
    assert not RESET_LINK.search(log), RESET_LINK.search(log)
    assert email not in log


def test_without_email_an_invitation_link_is_shown_to_the_owner_not_claimed_sent(server_without_email):
    server = server_without_email
    owner = Browser(server.http)
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    assert owner.post("/signup/", {"email": email, "password": PASSWORD}).status_code == 302
    assert owner.post("/dashboard/team/", {"email": "teammate@example.com"}).status_code == 302
    page = owner.get("/dashboard/team/").text
    assert "Email is not configured on this server, so nothing was sent" in page
    assert re.search(r"/invite/[\w-]+/", page)
    assert "Invitation sent to" not in page


def settings_with(env: dict) -> dict:
    """What service.settings makes of this environment (in a fresh interpreter)."""
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({k: getattr(s, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', "
            "'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', 'DEFAULT_FROM_EMAIL')}))")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TABCAST_EMAIL", "TABCAST_SMTP", "TABCAST_DEBUG"))}
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**base, "DJANGO_SETTINGS_MODULE": "service.settings", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_email_is_chosen_explicitly_from_the_environment(tmp_path):
    var = {"TABCAST_VAR_DIR": str(tmp_path)}
    assert settings_with(var)["EMAIL_BACKEND"] == "tenants.mail.DisabledEmailBackend"  # never the console
    assert settings_with({**var, "TABCAST_DEBUG": "1"})["EMAIL_BACKEND"].endswith("console.EmailBackend")
    chosen = "django.core.mail.backends.console.EmailBackend"
    assert settings_with({**var, "TABCAST_EMAIL_BACKEND": chosen})["EMAIL_BACKEND"] == chosen

    url = settings_with({**var, "TABCAST_EMAIL_URL": "smtp://me%40example.com:p%3Ass@mail.example.com"})
    assert url == {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "mail.example.com",
                   "EMAIL_PORT": 587, "EMAIL_HOST_USER": "me@example.com", "EMAIL_HOST_PASSWORD": "p:ss",
                   "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False, "DEFAULT_FROM_EMAIL": "Tabcast <no-reply@tabcast.local>"}
    smtps = settings_with({**var, "TABCAST_EMAIL_URL": "smtps://mail.example.com", "TABCAST_FROM_EMAIL": "a@b.c"})
    assert (smtps["EMAIL_PORT"], smtps["EMAIL_USE_SSL"], smtps["EMAIL_USE_TLS"], smtps["DEFAULT_FROM_EMAIL"]) == (
        465, True, False, "a@b.c")
    parts = settings_with({**var, "TABCAST_SMTP_HOST": "mail.example.com", "TABCAST_SMTP_PORT": "2525",
                           "TABCAST_SMTP_USER": "me", "TABCAST_SMTP_PASSWORD": "pw", "TABCAST_SMTP_TLS": "0"})
    assert (parts["EMAIL_HOST"], parts["EMAIL_PORT"], parts["EMAIL_HOST_USER"], parts["EMAIL_HOST_PASSWORD"],
            parts["EMAIL_USE_TLS"], parts["EMAIL_USE_SSL"]) == ("mail.example.com", 2525, "me", "pw", False, False)


def test_the_disabled_backend_in_process_shows_the_page_and_sends_nothing(client, settings, alice):
    settings.EMAIL_BACKEND = settings.DISABLED_EMAIL_BACKEND
    response = client.post(reverse("tenants:password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 503 and b"Email is not configured" in response.content
    assert mail.outbox == []
