"""The team page and invitations: invite by email, join by link, with or without an account."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tenants import services
from tenants.models import Invitation, Membership, Tenant

from tests.support.teams import PASSWORD

pytestmark = pytest.mark.django_db


def invite(client, email: str) -> str:
    """Invite through the team page; return the link from the email."""
    response = client.post(reverse("tenants:team"), {"email": email})
    assert response.status_code == 302, response.content.decode()
    body = mail.outbox[-1].body
    return re.search(r"http://testserver(/invite/[\w-]+/)", body).group(1)


def test_invitation_email_names_the_team_and_the_inviter(alice_client):
    invite(alice_client, "Dana@Example.com")
    message = mail.outbox[0]
    assert message.to == ["dana@example.com"]
    assert message.subject == "alice@example.com invited you to Alice's team on Tabcast"
    assert "the link works for 7 days" in message.body
    page = alice_client.get(reverse("tenants:team")).content.decode()
    assert "dana@example.com" in page and "Pending invitations" in page


def test_new_person_signs_up_through_the_link_and_joins_the_team(alice, alice_client, alice_app):
    link = invite(alice_client, "dana@example.com")
    newcomer = Client()
    page = newcomer.get(link)
    assert "Join Alice&#x27;s team" in page.content.decode()
    response = newcomer.post(link, {"password": PASSWORD})
    assert response["Location"] == reverse("tenants:app_list")

    membership = Membership.objects.get(user__username="dana@example.com")
    assert membership.tenant == services.tenant_of(alice) and membership.role == Membership.Role.MEMBER
    assert newcomer.get(reverse("tenants:app_detail", args=[alice_app.id])).status_code == 200
    assert Invitation.objects.get().accepted_at is not None
    assert newcomer.get(link).status_code == 404  # used once only
    assert Tenant.objects.count() == 1  # no stray team for the newcomer


def test_existing_user_logs_in_and_accepts(alice, alice_client, bob):
    link = invite(alice_client, "bob@example.com")
    page = Client().get(link).content.decode()
    assert "Log in to accept" in page
    bob_client = Client()
    response = bob_client.post(reverse("tenants:login"),
                               {"username": "bob@example.com", "password": PASSWORD, "next": link})
    assert response["Location"] == link
    response = bob_client.post(link)
    assert response["Location"] == reverse("tenants:app_list")
    assert services.tenant_of(bob) == services.tenant_of(alice)
    assert not Tenant.objects.filter(name="Bob's team").exists()  # left empty, so removed


def test_accepting_is_refused_while_your_old_team_still_has_apps(alice_client, bob, bob_app):
    link = invite(alice_client, "bob@example.com")
    bob_client = Client()
    bob_client.force_login(bob)
    page = bob_client.get(link).content.decode()
    assert "still has apps" in page
    assert 'button--block">Join' not in page  # no Join button while it cannot work
    response = bob_client.post(link)
    assert response.status_code == 200
    assert "still has apps" in response.content.decode()
    assert services.tenant_of(bob).name == "Bob's team"


def test_an_invitation_only_works_for_its_address(alice_client, make_user):
    link = invite(alice_client, "dana@example.com")
    eve = make_user("eve@example.com")
    eve_client = Client()
    eve_client.force_login(eve)
    response = eve_client.post(link)
    assert "was sent to dana@example.com" in response.content.decode()
    assert services.tenant_of(eve).name == "eve's team"


def test_expired_and_revoked_invitations_are_refused(alice_client):
    link = invite(alice_client, "dana@example.com")
    Invitation.objects.update(created_at=Invitation.objects.get().created_at - timedelta(days=8))
    assert Client().get(link).status_code == 404
    assert Client().post(link, {"password": PASSWORD}).status_code == 404

    link = invite(alice_client, "erin@example.com")
    invitation = Invitation.objects.get(email="erin@example.com")
    alice_client.post(reverse("tenants:revoke_invitation", args=[invitation.id]))
    assert Client().get(link).status_code == 404


def test_inviting_someone_already_on_the_team_is_an_error(alice_client):
    response = alice_client.post(reverse("tenants:team"), {"email": "ALICE@example.com"})
    assert response.status_code == 200 and response.context["form"].errors["email"]
    assert mail.outbox == []


def test_members_cannot_invite_or_remove(alice, alice_client):
    link = invite(alice_client, "dana@example.com")
    Client().post(link, {"password": PASSWORD})
    dana = Membership.objects.get(user__username="dana@example.com").user
    dana_client = Client()
    dana_client.force_login(dana)
    assert dana_client.post(reverse("tenants:team"), {"email": "x@example.com"}).status_code == 403
    owner = Membership.objects.get(user=alice)
    assert dana_client.post(reverse("tenants:remove_member", args=[owner.id])).status_code == 403
    assert "Invite a teammate" not in dana_client.get(reverse("tenants:team")).content.decode()


def test_owner_removes_a_member_who_then_gets_a_team_of_their_own(alice, alice_client, alice_app):
    link = invite(alice_client, "dana@example.com")
    dana_client = Client()
    dana_client.post(link, {"password": PASSWORD})
    membership = Membership.objects.get(user__username="dana@example.com")
    alice_client.post(reverse("tenants:remove_member", args=[membership.id]))
    assert dana_client.get(reverse("tenants:app_detail", args=[alice_app.id])).status_code == 404
    assert services.tenant_of(membership.user) != services.tenant_of(alice)


def test_team_actions_are_scoped_to_the_owners_tenant(alice_client, bob):
    bob_membership = Membership.objects.get(user=bob)
    bob_invitation = Invitation.objects.create(tenant=bob_membership.tenant, email="x@example.com")
    alice_client.post(reverse("tenants:remove_member", args=[bob_membership.id]))
    alice_client.post(reverse("tenants:revoke_invitation", args=[bob_invitation.id]))
    assert Membership.objects.filter(id=bob_membership.id).exists()
    assert Invitation.objects.filter(id=bob_invitation.id).exists()


def test_the_only_owner_of_a_team_with_members_cannot_leave_it_ownerless(alice_client, bob):
    """Bob owns a team with a member; joining Alice's team would leave that team with no owner."""
    bob_client = Client()
    bob_client.force_login(bob)
    member_link = invite(bob_client, "dana@example.com")
    Client().post(member_link, {"password": PASSWORD})
    link = invite(alice_client, "bob@example.com")
    page = bob_client.get(link).content.decode()
    assert "would be left without an owner" in page
    bob_client.post(link)
    assert services.tenant_of(bob).name == "Bob's team"
