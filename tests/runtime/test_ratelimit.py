"""The API's token buckets, on a clock the test moves (no waiting, no timing)."""

from __future__ import annotations

import pytest

from packwork.runtime.ratelimit import MAX_KEYS, Limiter, Rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_refill_rate():
    clock = Clock()
    limiter = Limiter(Rate(3, 60), clock)  # 3 at once, then one every 20 s
    assert [limiter.wait_needed("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.wait_needed("a") == pytest.approx(20)
    assert limiter.wait_needed("a") == pytest.approx(20), "a refused request takes nothing"
    clock.now += 10
    assert limiter.wait_needed("a") == pytest.approx(10)
    clock.now += 10
    assert limiter.wait_needed("a") == 0
    assert limiter.wait_needed("a") == pytest.approx(20)
    clock.now += 3600
    assert [limiter.wait_needed("a") for _ in range(4)][:3] == [0, 0, 0], "a bucket never holds more than the burst"


def test_each_key_has_its_own_bucket():
    limiter = Limiter(Rate(1, 60), Clock())
    assert limiter.wait_needed("a") == 0 and limiter.wait_needed("a") > 0
    assert limiter.wait_needed("b") == 0


def test_the_number_of_buckets_is_bounded():
    limiter = Limiter(Rate(1, 60), Clock())
    for n in range(MAX_KEYS + 5):
        limiter.wait_needed(f"key{n}")
    assert len(limiter._buckets) == MAX_KEYS
    assert limiter.wait_needed("key0") == 0, "the least recently seen bucket went first"


@pytest.mark.parametrize("text, rate", [("600/60", Rate(600, 60)), ("5/0.5", Rate(5, 0.5)), ("off", None),
                                        (" OFF ", None)])
def test_rates_parse(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["", "600", "0/60", "10/0", "ten/60", "10/-1", "10/nan", "1/inf/2"])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="REQUESTS/SECONDS"):
        Rate.parse(text)
