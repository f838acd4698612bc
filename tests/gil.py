"""Does a call let go of the GIL: a thread that needs it counts while the call runs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def counted_during(call: Callable[[], T], *, tries: int = 20) -> tuple[T, int]:
    """``call()``'s result, and how many times another Python thread ran while it did.

    The switch interval is raised meanwhile, so that the calling thread is never made to give
    the GIL up: the count grows during the call only when the call lets go of it. On a loaded
    machine the other thread may find no free core while one call runs, so ``call`` (which must
    be repeatable) runs again, up to ``tries`` times, until the other thread has run: a call
    that holds the GIL counts nothing however often it runs.
    """
    for _ in range(tries - 1):
        result, counted = _counted_once(call)
        if counted:
            return result, counted
    return _counted_once(call)


def _counted_once(call: Callable[[], T]) -> tuple[T, int]:
    """One run of ``call`` with another thread counting while the call lets go of the GIL."""
    running = False
    counted = 0
    done = threading.Event()

    def count() -> None:
        nonlocal counted
        while not done.is_set():
            counted += running
            time.sleep(0.0001)  # lets the calling thread have the GIL back

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    counter = threading.Thread(target=count)
    try:
        counter.start()
        running = True
        result = call()
        running = False
    finally:
        done.set()
        counter.join()
        sys.setswitchinterval(switch_interval)
    return result, counted
