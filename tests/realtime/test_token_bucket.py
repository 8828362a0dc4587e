"""The one TokenBucket (service/realtime/ratelimit.py) behind every in-process rate limit."""

import pytest

from service.realtime.ratelimit import TokenBucket


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_starts_full_spends_one_per_take_and_refills_at_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(0.5)  # 1 token at 2/s
    assert bucket.allow("b")  # keys are independent
    clock.now += 0.5
    assert bucket.allow("a") and not bucket.allow("a")
    clock.now += 100
    assert [bucket.allow("a") for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_per_call_rate_and_burst_for_plan_limits():
    clock = Clock()
    bucket = TokenBucket(clock=clock)
    assert [bucket.allow(7, 5, 5) for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.2
    assert bucket.allow(7, 5, 5)
    assert bucket.take(7, 5, 5) == pytest.approx(0.2)


def test_full_buckets_are_forgotten_and_max_keys_bounds_memory():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock, max_keys=100)
    for n in range(100):
        bucket.allow(n)
    assert len(bucket) == 100
    clock.now += 0.05  # half refilled: none may be forgotten yet
    bucket.forget_full()
    assert len(bucket) == 100
    assert bucket.allow("new") and len(bucket) == 1  # full: nothing to keep, so all went
    clock.now += 1
    bucket.forget_full()
    assert len(bucket) == 0


def test_zero_rate_never_refills():
    bucket = TokenBucket(rate=0, burst=1, clock=Clock())
    assert bucket.allow("a") and bucket.take("a") == float("inf")
