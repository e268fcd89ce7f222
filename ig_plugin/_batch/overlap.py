"""Two explain calls at once, answers in order: what fills the cores when one call cannot.

One ``explain`` call on a small model leaves cores idle: its Python work (checks, arrays, the
explanation) runs on one core while the compiled loop waits, and its small gradient batches
gain little from TensorFlow's intra-op threads. A second call in flight fills that time.
``benchmarks/calls_at_once.py`` times both ways on every benchmark workload: on a 2-core AMD
EPYC with nothing else started, two calls at once took 0.61x to 0.64x the time per row of one
on the tabular MLP, and 0.87x to 0.98x on the two CNNs and the text model, whose larger
operations already kept both cores busier (``benchmarks/results/calls_at_once.txt``). The
explainers are safe to call from several threads; what a second call costs is its working
memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class CallsAtOnce:
    """Up to ``calls`` calls of a function at once, on threads made once and kept.

    Parameters
    ----------
    calls
        Most calls at once; with 1, the calls run in the caller's thread and no thread is made.
    """

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self._threads = (
            ThreadPoolExecutor(calls, thread_name_prefix="ig-plugin-explain") if calls > 1 else None
        )

    def map(self, function: Callable[[Item], Answer], items: Iterable[Item]) -> Iterator[Answer]:
        """``function`` over ``items``, in their order, up to :attr:`calls` calls at once.

        Items are taken from ``items`` only as calls finish, so a long iterable is never held
        whole.

        Yields
        ------
        Answer
            ``function(item)`` for each item, in the order of ``items``.

        Raises
        ------
        Exception
            The first error of a call, in order; the calls not yet started are cancelled (a
            started one runs to its end, as a compiled loop cannot be stopped midway).
        """
        if self._threads is None:
            yield from map(function, items)
            return
        pending: deque[Future[Answer]] = deque()
        try:
            for item in items:
                if len(pending) == self.calls:  # one call ends before the next starts
                    yield pending.popleft().result()
                pending.append(self._threads.submit(function, item))
            while pending:
                yield pending.popleft().result()
        finally:  # an error, or a consumer that stopped early: start nothing more
            for call in pending:
                call.cancel()
