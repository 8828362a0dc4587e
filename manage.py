#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # loads service/settings.py, which checks every TABCAST_* value it reads
    except ImproperlyConfigured as exc:  # e.g. TABCAST_NODE_TTL=abc: one clear line, not a traceback
        sys.exit(f"Tabcast is misconfigured: {exc}")
    execute_from_command_line(sys.argv)
