"""A thread that hands each message of a Redis pub/sub connection to a function."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def listening(pubsub: Any, handle: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call `handle(message)` for each message `pubsub` receives (subscribe confirmations
    left out) while the block runs."""
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                handle(message)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
