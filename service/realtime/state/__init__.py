"""Cluster-wide state backends; ``build_state()`` picks one from settings."""

from django.conf import settings
from django.utils.module_loading import import_string

from .base import CachedEvent, ClusterState, Member, user_key

__all__ = ["CachedEvent", "ClusterState", "Member", "build_state", "user_key"]


def build_state() -> ClusterState:
    return import_string(settings.TABCAST["STATE_BACKEND"])()
