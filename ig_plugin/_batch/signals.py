"""SIGTERM as an orderly exit for the command line, so that its cleanup runs.

By default SIGTERM (``kill``, a scheduler's stop, a container's shutdown) ends Python at once:
no ``finally`` runs, and a write of OUT in progress leaves its hidden temporary file behind.
Inside :func:`sigterm_raises` it raises :class:`Terminated` in the main thread instead, which
unwinds like Ctrl-C does: the temporary file is removed and a local Ray cluster is stopped.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: The exit code after SIGTERM: 128 + 15, what a shell reports for a process SIGTERM ended.
EXIT_CODE = 128 + signal.SIGTERM


class Terminated(BaseException):
    """The process received SIGTERM.

    A BaseException, like KeyboardInterrupt, so that a library's ``except Exception`` does not
    swallow it.
    """


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, the first SIGTERM raises :class:`Terminated` in the main thread.

    Later SIGTERMs are ignored, so that a second ``kill`` cannot interrupt the cleanup the first
    one started (SIGKILL still ends the process). The previous handler is put back on leaving.
    Outside the main thread, where Python cannot set signal handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal received
        if not received:
            received = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        restore_sigterm(previous)


def restore_sigterm(handler: Any) -> None:
    """Put back a handler returned by ``signal.signal`` or ``signal.getsignal``.

    None stands for a handler not set from Python: the default is the nearest to it.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL if handler is None else handler)
