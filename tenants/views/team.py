"""The team page: who is on it, pending invitations, and inviting someone by email."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import services
from ..access import owner_required, tenant_required
from ..forms import InviteForm
from ..mail import email_configured


@tenant_required
def team(request):
    """Members, pending invitations, and (for the owner) the invite form."""
    form = InviteForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST":
        if not request.membership.is_owner:
            raise PermissionDenied("Only the team's owner can invite people.")
        if form.is_valid():
            email = form.cleaned_data["email"]
            invitation = services.invite(
                request.tenant, email, request.user,
                lambda token: request.build_absolute_uri(reverse("tenants:invitation", args=[token])))
            if email_configured():
                messages.success(request, f"Invitation sent to {email}. "
                                          f"The link works for {services.INVITATION_VALID_DAYS} days.")
            else:  # nothing was sent: the owner passes the link on themselves
                link = request.build_absolute_uri(reverse("tenants:invitation", args=[invitation.token]))
                messages.warning(request, f"Email is not configured on this server, so nothing was sent. "
                                          f"Send {email} this link yourself (it works for "
                                          f"{services.INVITATION_VALID_DAYS} days): {link}")
            return redirect("tenants:team")
    return render(request, "tenants/team.html", {
        "form": form,
        "members": services.members_of(request.tenant),
        "invitations": services.pending_invitations(request.tenant),
        "valid_days": services.INVITATION_VALID_DAYS,
    })


@require_POST
@owner_required
def revoke_invitation(request, invitation_id):
    """Withdraw a pending invitation: its link stops working."""
    if services.revoke_invitation(request.tenant, invitation_id):
        messages.success(request, "Invitation revoked: its link no longer works.")
    return redirect("tenants:team")


@require_POST
@owner_required
def remove_member(request, membership_id):
    """Take someone else off the team."""
    if services.remove_member(request.tenant, membership_id, request.user):
        messages.success(request, "Member removed from the team.")
    return redirect("tenants:team")
