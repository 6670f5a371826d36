"""Read ahead: the next chunk of a file is read on a background thread while the caller
works on the current one, so a pass over a file costs about what its slower half costs.

Reading (disk, decompression, Parquet/CSV decoding, dtype conversion) releases the GIL
in NumPy and PyArrow, so it overlaps the E-step kernel.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` on a background thread, at most ``depth`` items ahead.

    An exception raised while reading is raised here, at the item it stopped at. When
    the caller stops early (``break``, an error, ``close()``), the reader stops after the
    item in hand and its iterator is closed (files closed) before this returns.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((None, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="gaussmix-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()
