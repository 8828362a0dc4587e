"""Baseline (b): the textbook Channels design (a consumer and a group membership per socket)."""
