"""Dashboard views, thin: accounts (sign up, log in, invitations), apps, and the team page."""
