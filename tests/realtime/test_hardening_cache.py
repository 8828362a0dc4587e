"""The app lookup cache (service/realtime/tenancy.py) is bounded, expires, keeps hits apart from
misses, and never looks up (or keeps) a key or id that cannot exist. Issue 9, finding 2.

These drive ``get_app`` / ``get_app_sync`` in-process with a counting APP_SOURCE; the same
attack against a real server is in test_hardening_input.py.
"""

import asyncio
import gc
import tracemalloc

import pytest
from django.conf import settings
from django.test import override_settings

from service.realtime import tenancy
from service.realtime.tenancy import AppInfo, forget_apps, get_app, get_app_sync

APPS = {f"{i:020x}": AppInfo(id=i, key=f"{i:020x}", secret="s") for i in range(1, 301)}
calls: list[tuple] = []


def fake_load_app(*, key=None, app_id=None):
    calls.append((key, app_id))
    if key is not None:
        return APPS.get(key)
    return next((app for app in APPS.values() if app.id == app_id), None)


@pytest.fixture
def source():
    def configure(**values):
        tabcast = {**settings.TABCAST, "APP_SOURCE": f"{__name__}.fake_load_app", "APP_CACHE_SECONDS": 60,
                   "APP_CACHE_SIZE": 50, "APP_CACHE_MISSES": 20, **values}
        override = override_settings(TABCAST=tabcast)
        override.enable()
        overrides.append(override)
        forget_apps()
        calls.clear()

    overrides: list = []
    configure()
    yield configure
    for override in reversed(overrides):
        override.disable()
    forget_apps()


def junk(i: int) -> str:
    """A key of the valid alphabet and maximum length that no app has."""
    return f"{i:0100d}"


def retained_by(work) -> int:
    """Bytes still allocated after ``work()`` (tracemalloc), i.e. what the process keeps."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_flood_of_unknown_keys_keeps_memory_bounded(source):
    def flood():
        for i in range(20_000):
            assert get_app_sync(key=junk(i)) is None
            calls.clear()  # the test's own record of lookups is not what is measured
    # The unbounded cache kept ~20,000 keys of 100 characters plus their entries (several MB).
    kept = retained_by(flood)
    assert kept < 200_000, f"the app cache kept {kept} bytes after 20,000 unknown keys"
    hits, misses = tenancy.cache_sizes()
    assert hits == 0 and misses <= 20


def test_misses_never_evict_a_valid_apps_entry(source):
    valid = next(iter(APPS))
    assert get_app_sync(key=valid).key == valid
    assert get_app_sync(app_id=1).id == 1
    for i in range(5_000):
        get_app_sync(key=junk(i))
        get_app_sync(app_id=10_000 + i)
    calls.clear()
    assert get_app_sync(key=valid).key == valid and get_app_sync(app_id=1).id == 1
    assert calls == [], "a flood of unknown keys evicted a real app from the cache"


async def test_the_async_lookup_shares_the_same_bounded_cache(source):
    valid = next(iter(APPS))
    assert (await get_app(key=valid)).key == valid
    for i in range(500):
        assert await get_app(key=junk(i)) is None
    calls.clear()
    assert (await get_app(key=valid)).key == valid
    assert calls == []
    assert tenancy.cache_sizes()[1] <= 20


def test_found_apps_are_bounded_too_oldest_first(source):
    keys = list(APPS)
    for key in keys:  # 300 apps through a cache of 50
        assert get_app_sync(key=key).key == key
    assert tenancy.cache_sizes()[0] == 50
    calls.clear()
    assert get_app_sync(key=keys[-1]).key == keys[-1]  # recent: still cached
    assert calls == []
    assert get_app_sync(key=keys[0]).key == keys[0]  # oldest: evicted, looked up again
    assert calls == [(keys[0], None)]


def test_entries_expire_after_the_ttl(source, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(tenancy.time, "monotonic", lambda: now[0])
    valid = next(iter(APPS))
    get_app_sync(key=valid)
    get_app_sync(key=junk(1))
    calls.clear()
    get_app_sync(key=valid)
    get_app_sync(key=junk(1))
    assert calls == []  # both cached
    now[0] += 61
    get_app_sync(key=valid)
    get_app_sync(key=junk(1))
    assert calls == [(valid, None), (junk(1), None)]  # both looked up again after APP_CACHE_SECONDS


async def test_a_just_expired_app_is_answered_at_once_while_one_load_refreshes_it(source, monkeypatch):
    """A busy app's lookups never wait for the database when its entry expires: they get the
    entry they had while one background load refreshes it. Past twice the TTL they wait again."""
    now = [1000.0]
    monkeypatch.setattr(tenancy.time, "monotonic", lambda: now[0])
    valid = next(iter(APPS))
    assert (await get_app(key=valid)).key == valid
    calls.clear()
    APPS[valid] = AppInfo(id=1, key=valid, secret="rotated")
    try:
        now[0] += 61  # expired
        answers = [await get_app(key=valid) for _ in range(5)]
        assert [app.secret for app in answers] == ["s"] * 5  # answered from the cache, no wait
        await asyncio.gather(*tenancy._refreshes.values())  # noqa: SLF001 - the one background load
        assert calls == [(valid, None)]
        assert (await get_app(key=valid)).secret == "rotated" and calls == [(valid, None)]

        calls.clear()
        now[0] += 121  # expired for more than a TTL: too old to answer with
        assert (await get_app(key=valid)).secret == "rotated" and calls == [(valid, None)]
    finally:
        APPS[valid] = AppInfo(id=1, key=valid, secret="s")


def test_no_ttl_means_no_caching_at_all(source):
    source(APP_CACHE_SECONDS=0)
    for i in range(1_000):
        get_app_sync(key=junk(i))
    assert tenancy.cache_sizes() == (0, 0)


@pytest.mark.parametrize("key", [
    "k" * 101, "k" * 500_000, "abc\n", "abc def", "abc/def", "ключ", "", "abc\x00", "a:b",
])
async def test_impossible_keys_are_refused_before_any_lookup(source, key):
    assert get_app_sync(key=key) is None
    assert await get_app(key=key) is None
    assert calls == [] and tenancy.cache_sizes() == (0, 0)


@pytest.mark.parametrize("app_id", [0, -1, 2**63, 2**200, "1", 1.0, True])
async def test_impossible_app_ids_are_refused_before_any_lookup(source, app_id):
    assert get_app_sync(app_id=app_id) is None
    assert await get_app(app_id=app_id) is None
    assert calls == [] and tenancy.cache_sizes() == (0, 0)


def test_a_save_clears_both_segments(source):
    get_app_sync(key=next(iter(APPS)))
    get_app_sync(key=junk(1))
    assert tenancy.cache_sizes() == (1, 1)
    forget_apps()
    assert tenancy.cache_sizes() == (0, 0)
