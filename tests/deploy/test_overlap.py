"""Explain calls at once, answers in order (:class:`ig_plugin._batch.overlap.CallsAtOnce`):
real threads, calls that wait for each other, and an error that stops what has not started."""

import threading
import time

import pytest

from ig_plugin._batch.overlap import CallsAtOnce

#: Seconds a call waits for the other at a barrier: calls that never overlap fail the test.
MEET_TIMEOUT_S = 30


def test_two_calls_run_at_once_and_answers_keep_the_items_order():
    # Every pair of calls meets at a barrier: one call at a time would break it (timeout).
    meet = threading.Barrier(2, timeout=MEET_TIMEOUT_S)
    delays = [0.03, 0.0, 0.02, 0.0, 0.01, 0.0]  # the later call of each pair ends first

    def call(item):
        meet.wait()
        time.sleep(delays[item])
        return item * 10, threading.current_thread()

    answers = list(CallsAtOnce(2).map(call, range(6)))
    assert [value for value, _ in answers] == [0, 10, 20, 30, 40, 50]
    assert threading.current_thread() not in {thread for _, thread in answers}


def test_never_more_calls_at_once_than_asked_and_items_taken_as_calls_end():
    running, most, taken = [0], [0], []
    lock = threading.Lock()

    def items():
        for item in range(8):
            taken.append(item)
            yield item

    def call(item):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item

    answers = CallsAtOnce(2).map(call, items())
    assert next(answers) == 0
    assert len(taken) <= 3  # the first two, and the one after the first answer
    assert list(answers) == list(range(1, 8))
    assert most[0] == 2


def test_one_call_at_a_time_runs_in_the_callers_thread():
    threads = set()

    def call(item):
        threads.add(threading.current_thread())
        return item

    answers = CallsAtOnce(1).map(call, "abc")
    assert list(answers) == ["a", "b", "c"]
    assert threads == {threading.current_thread()}


def test_an_error_is_raised_in_order_and_the_calls_not_started_are_cancelled():
    started = []

    def call(item):
        started.append(item)
        if item == 1:
            raise ValueError("row 1 does not fit")
        time.sleep(0.05)
        return item

    calls = CallsAtOnce(2)
    answers = calls.map(call, range(100))
    assert next(answers) == 0  # the answer before the error comes first
    with pytest.raises(ValueError, match="row 1 does not fit"):
        next(answers)
    calls._threads.shutdown(wait=True)  # the started calls have ended
    assert len(started) <= 3  # 0 and 1, and at most the one started as 0 ended
