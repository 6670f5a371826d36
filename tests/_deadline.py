"""Run a call with a deadline: a hang fails the test instead of stalling the suite.

The call runs in a daemon thread (a compiled loop cannot be interrupted by a signal);
past the deadline the test fails, naming the call.
"""

from __future__ import annotations

import threading

DEADLINE_S = 20.0


def within_deadline(fn, *args, deadline=DEADLINE_S, **kwargs):
    """``fn(*args, **kwargs)``'s result, or its exception re-raised; fails on a hang."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise AssertionError(f"hang: {getattr(fn, '__name__', fn)}{args!r:.80} "
                             f"{kwargs!r:.200} ran past {deadline} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")
