"""billing's pages: ``live`` (an app's usage page and debug console, fed live) and ``subscription``
(the team's plan: billing page, Stripe checkout and portal)."""
