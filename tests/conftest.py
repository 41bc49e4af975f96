"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from smtp_server import SmtpServer


def pytest_configure(config: pytest.Config) -> None:
    # A shell that starts the suite in the background (`bash .ci/run &`) starts it with
    # SIGINT ignored, and every process it spawns inherits that: the tests that press
    # Ctrl-C on `taskq up` and `taskq watch` would then wait forever. Handle it as an
    # interactive run does (an exec resets a handled signal to its default in children).
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that accepts everything until told otherwise."""
    with SmtpServer() as server:
        yield server
