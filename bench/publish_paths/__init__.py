"""Where the CPU of a signed HTTP publish goes: ``python -m bench.publish_paths``.

Runs the same signed publishes against three servers on one core and prints server CPU per
publish: Tabcast's publish endpoints on the event loop (``service/api/fast.py``, the
default), the same endpoints through Django's ASGI handler and DRF
(``TABCAST_FAST_PUBLISH=0``), and a do-nothing Django view behind the same handler and
middleware (the floor of any Django view).
"""
