"""Running parsers on a thread with a large stack.

The C JSON decoder recurses once per nesting level and stops at the
interpreter's recursion limit. Libraries in this process raise that limit
(py_ecc sets 100,000), and at such depths an 8 MiB main-thread stack runs
out first: a crafted feed would crash the process instead of being refused.
On a 512 MiB stack the recursion limit is always reached first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
STACK_BYTES = 512 * 1024 * 1024
_LOCK = threading.Lock()


def call(fn: Callable[[], T]) -> T:
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    with _LOCK:
        old = threading.stack_size(STACK_BYTES)
        try:
            worker = threading.Thread(target=work, name="sedis-parse", daemon=True)
            worker.start()
        finally:
            threading.stack_size(old)
    worker.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
