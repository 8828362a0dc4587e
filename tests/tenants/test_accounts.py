"""Sign up, log in, log out and password reset, as a customer goes through them."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from tenants import services
from tenants.models import Membership

from tests.support.teams import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_creates_user_team_and_owner_membership_and_logs_in():
    client = Client()
    response = client.post(reverse("tenants:signup"),
                           {"email": "New.Person@Example.com", "password": PASSWORD, "team": "Acme"})
    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:app_new")
    user = get_user_model().objects.get()
    assert (user.username, user.email) == ("new.person@example.com", "new.person@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.tenant.name == "Acme"
    assert membership.role == Membership.Role.OWNER
    assert client.get(reverse("tenants:app_list")).status_code == 200


def test_signup_without_team_name_gets_a_default_one():
    Client().post(reverse("tenants:signup"), {"email": "sam@example.com", "password": PASSWORD})
    assert services.tenant_of(get_user_model().objects.get()).name == "sam's team"


def test_signup_refuses_taken_email_in_any_case(make_user):
    make_user("taken@example.com")
    response = Client().post(reverse("tenants:signup"), {"email": "TAKEN@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize("password", ["short", "password123"])
def test_signup_refuses_weak_passwords(password):
    response = Client().post(reverse("tenants:signup"), {"email": "weak@example.com", "password": password})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not get_user_model().objects.exists()


def test_login_by_email_ignores_case_and_goes_to_the_dashboard(alice):
    client = Client()
    response = client.post(reverse("tenants:login"), {"username": "Alice@Example.COM", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:app_list")


def test_login_honours_next(alice):
    response = Client().post(reverse("tenants:login"),
                             {"username": "alice@example.com", "password": PASSWORD, "next": "/dashboard/team/"})
    assert response["Location"] == "/dashboard/team/"


def test_login_with_a_wrong_password_shows_an_error(alice):
    response = Client().post(reverse("tenants:login"), {"username": "alice@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "email and password don&#x27;t match an account" in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(alice_client):
    response = alice_client.post(reverse("tenants:logout"))
    assert response["Location"] == reverse("tenants:login")
    response = alice_client.get(reverse("tenants:app_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("tenants:login"))


def test_logged_in_user_visiting_login_or_signup_goes_to_the_dashboard(alice_client):
    assert alice_client.get(reverse("tenants:login"))["Location"] == reverse("tenants:app_list")
    assert alice_client.get(reverse("tenants:signup"))["Location"] == reverse("tenants:app_list")


def test_password_reset_by_email_end_to_end(alice):
    client = Client()
    response = client.post(reverse("tenants:password_reset"), {"email": "alice@example.com"})
    assert response["Location"] == reverse("tenants:password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert "Reset your Tabcast password" in message.subject
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", message.body).group(1)

    form_page = client.get(link, follow=True)  # Django swaps the token for a session marker
    assert form_page.context["validlink"]
    new_password = "a brand new passphrase"
    response = client.post(form_page.redirect_chain[-1][0],
                           {"new_password1": new_password, "new_password2": new_password})
    assert response["Location"] == reverse("tenants:password_reset_complete")

    assert Client().login(username="alice@example.com", password=new_password)
    assert not Client().login(username="alice@example.com", password=PASSWORD)


def test_password_reset_for_unknown_email_sends_nothing_and_says_the_same():
    response = Client().post(reverse("tenants:password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("tenants:password_reset_done")
    assert mail.outbox == []


def test_user_without_a_team_gets_one_on_first_visit(db):
    user = get_user_model().objects.create_user("admin", "admin@example.com", PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get(reverse("tenants:app_list")).status_code == 200
    assert services.tenant_of(user).name == "admin's team"


def test_change_password_keeps_this_session_and_signs_out_others(alice):
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        assert client.login(username="alice@example.com", password=PASSWORD)
    new_password = "another good passphrase"
    response = here.post(reverse("tenants:password_change"), {
        "old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password})
    assert response["Location"] == reverse("tenants:password_change_done")
    assert here.get(reverse("tenants:app_list")).status_code == 200
    assert elsewhere.get(reverse("tenants:app_list")).status_code == 302
    assert Client().login(username="alice@example.com", password=new_password)


def test_change_password_needs_the_old_one(alice_client):
    response = alice_client.post(reverse("tenants:password_change"), {
        "old_password": "wrong", "new_password1": "another good passphrase",
        "new_password2": "another good passphrase"})
    assert response.status_code == 200 and response.context["form"].errors["old_password"]
