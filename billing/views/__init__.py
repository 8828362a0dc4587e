"""billing's pages: ``usage`` (an app's usage page) and ``subscription`` (the team's plan: billing
page, Stripe checkout and portal). The debug console and the live feeds are the ``live`` app's."""
