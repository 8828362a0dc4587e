"""Metering tests use the shared teams (tests/support/teams.py); nothing of their own."""
