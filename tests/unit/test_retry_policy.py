"""The one retry policy for outbound calls: the first attempt is a plain call (issue 26: tenacity's machinery for
every push was 5 % of channel sync's CPU), and what follows a failure is the same as before — exponential backoff,
a Retry-After honoured, permanent errors and long conditions not retried, the last error raised."""
from __future__ import annotations

import pytest

from connectors.base import PermanentError, RetryPolicy, TransientError


class Flaky:
    def __init__(self, *errors: BaseException):
        self.errors, self.calls = list(errors), 0

    def __call__(self, x: int, *, y: int) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return x + y


def policy(slept: list[float], attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial=0.1, maximum=0.4, jitter=0, sleep=slept.append)


def test_a_call_that_succeeds_is_made_once_and_sleeps_never():
    slept: list[float] = []
    fn = Flaky()
    assert policy(slept).call(fn, 1, y=2) == 3
    assert fn.calls == 1 and slept == []


def test_transient_failures_back_off_exponentially_up_to_the_maximum():
    slept: list[float] = []
    fn = Flaky(*(TransientError("sim", f"down {i}") for i in range(4)))
    assert policy(slept).call(fn, 1, y=2) == 3
    assert fn.calls == 5 and slept == [0.1, 0.2, 0.4, 0.4]


def test_after_the_last_attempt_the_last_error_is_raised():
    slept: list[float] = []
    fn = Flaky(*(TransientError("sim", f"down {i}") for i in range(3)))
    with pytest.raises(TransientError, match="down 2"):
        policy(slept, attempts=3).call(fn, 1, y=2)
    assert fn.calls == 3 and slept == [0.1, 0.2]


def test_a_retry_after_is_honoured_on_any_attempt_the_first_included():
    slept: list[float] = []
    fn = Flaky(TransientError("sim", "busy", retry_after=1.5), TransientError("sim", "busy"),
               TransientError("sim", "busy", retry_after=0.7))
    assert policy(slept).call(fn, 1, y=2) == 3
    assert slept == [1.5, 0.2, 0.7]


@pytest.mark.parametrize("error", [PermanentError("sim", "no such sku"),
                                   TransientError("sim", "payment not visible yet", wait_up_to=60),
                                   ValueError("a bug")])
def test_what_is_not_worth_retrying_here_is_raised_at_once(error):
    slept: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy(slept).call(fn, 1, y=2)
    assert fn.calls == 1 and slept == []


def test_one_attempt_means_one_call():
    slept: list[float] = []
    fn = Flaky(TransientError("sim", "down"))
    with pytest.raises(TransientError):
        policy(slept, attempts=1).call(fn, 1, y=2)
    assert fn.calls == 1 and slept == []
