"""Where the CPU of a signed HTTP publish goes: ``python -m bench.publish_paths``.

Runs the same signed publishes against three servers on one core and prints server CPU per
publish: Tabcast's real API (Django + DRF), a do-nothing Django view behind the same ASGI
handler and middleware (the floor of any Django view), and ``asgi_handler.py``, a prototype
that answers ``POST /apps/{id}/events`` in front of Django (same signature check, same
``node.publish``; no validation details, rate limit or error format: an experiment, not a fix).
"""
