"""Sign up, log in and out, password reset, and joining a team through an invitation."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy

from .. import services
from ..forms import EmailAuthenticationForm, InvitationSignupForm, SignupForm
from ..mail import email_configured
from ..ratelimit import rate_limited

# login() of a user we just created (not authenticate()d) must name its backend once several exist.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def home(request):
    """The site root: the dashboard, or log in first."""
    return redirect("tenants:app_list" if request.user.is_authenticated else "tenants:login")


@rate_limited("signup")
def signup(request):
    """Create an account and its team, log in, and go create the first app."""
    if request.user.is_authenticated:
        return redirect("tenants:app_list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.sign_up(form.cleaned_data["email"], form.cleaned_data["password"],
                                form.cleaned_data["team"])
        login(request, user, backend=MODEL_BACKEND)
        messages.success(request, "Welcome to Tabcast! Create your first app to get keys.")
        return redirect("tenants:app_new")
    return render(request, "registration/signup.html", {"form": form})


login_view = rate_limited("login")(auth_views.LoginView.as_view(
    form_class=EmailAuthenticationForm, redirect_authenticated_user=True))

logout_view = auth_views.LogoutView.as_view()


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset-by-email, but only when the server can send email: otherwise the page says
    so and no token is made at all (never one that would only end up in a log)."""

    def dispatch(self, request, *args, **kwargs):
        if not email_configured():
            return render(request, "registration/password_reset_unavailable.html", status=503)
        return super().dispatch(request, *args, **kwargs)


password_reset = rate_limited("password_reset")(PasswordResetView.as_view(
    success_url=reverse_lazy("tenants:password_reset_done"),
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt"))

password_reset_done = auth_views.PasswordResetDoneView.as_view()

password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    success_url=reverse_lazy("tenants:password_reset_complete"))

password_reset_complete = auth_views.PasswordResetCompleteView.as_view()

password_change = auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("tenants:password_change_done"))

password_change_done = auth_views.PasswordChangeDoneView.as_view()


@rate_limited("signup")
def invitation(request, token):
    """Accept an invitation: logged in, with one click; otherwise by creating the account."""
    invitation = services.open_invitation(token)
    if invitation is None:
        return render(request, "tenants/invitation_invalid.html", status=404)
    if request.user.is_authenticated:
        return _accept_as_user(request, invitation)
    form = InvitationSignupForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        user = services.join_with_new_account(invitation, form.cleaned_data["password"])
        login(request, user, backend=MODEL_BACKEND)
        messages.success(request, f"Welcome to {invitation.tenant.name} on Tabcast!")
        return redirect("tenants:app_list")
    login_url = f"{reverse('tenants:login')}?next={reverse('tenants:invitation', args=[token])}"
    return render(request, "tenants/invitation.html", {
        "invitation": invitation, "form": form, "login_url": login_url,
        "account_exists": services.email_taken(invitation.email)})


def _accept_as_user(request, invitation):
    """A logged-in user joins with one POST, unless services say they cannot (shown up front)."""
    problem = services.acceptance_problem(invitation, request.user)
    if request.method == "POST" and not problem:
        try:
            services.accept_invitation(invitation, request.user)
        except services.InvitationError as exc:  # the team changed between the check and the POST
            problem = str(exc)
        else:
            messages.success(request, f"You joined {invitation.tenant.name}.")
            return redirect("tenants:app_list")
    return render(request, "tenants/invitation.html", {"invitation": invitation, "problem": problem})
