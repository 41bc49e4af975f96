"""The tests' TCP relay (tests/relay.py): forwards, cuts, restores and black-holes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from relay import DOWNSTREAM, UPSTREAM, Relay

QUIET = 0.3  # seconds of silence taken as "nothing came through"


class EchoServer:
    """Echoes every byte back, and keeps what it received."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.received = bytearray()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                self.received += data
                conn.sendall(data)


@pytest.fixture
def relay() -> Iterator[tuple[Relay, EchoServer]]:
    echo = EchoServer()
    with Relay(echo.address) as relay:
        yield relay, echo
    echo.listener.close()


def _connect(relay: Relay) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    sock.settimeout(5)
    return sock


def _nothing_arrives(sock: socket.socket) -> bool:
    sock.settimeout(QUIET)
    try:
        return sock.recv(100) == b"missing"  # never: any byte, or EOF, fails the check
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)  # polling for the relay's threads


def test_bytes_go_through_both_ways(relay):
    relay, echo = relay
    with _connect(relay) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"
    assert relay.connections <= 1


def test_a_cut_closes_every_connection_and_refuses_new_ones_until_restored(relay):
    relay, echo = relay
    port = relay.port
    with _connect(relay) as before:
        before.sendall(b"a")
        assert before.recv(100) == b"a"
        # When the relay is cut
        relay.cut()
        # Then the open connection is closed, and nothing listens on its port
        assert before.recv(100) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    # And when restored, it listens on the same port and forwards again
    relay.restore()
    assert relay.port == port
    with _connect(relay) as after:
        after.sendall(b"b")
        assert after.recv(100) == b"b"


def test_a_black_hole_holds_bytes_back_until_restored_without_closing_anything(relay):
    relay, echo = relay
    with _connect(relay) as sock:
        sock.sendall(b"1")
        assert sock.recv(100) == b"1"
        # When the relay black-holes both directions
        relay.black_hole()
        sock.sendall(b"2")
        # Then nothing reaches the server, nothing comes back, and the connection stays open
        assert _nothing_arrives(sock)
        assert bytes(echo.received) == b"1"
        # And a connection made meanwhile is accepted and held the same way
        with _connect(relay) as late:
            late.sendall(b"3")
            assert _nothing_arrives(late)
            # When restored, what was held back arrives, in order
            relay.restore()
            assert sock.recv(100) == b"2"
            assert late.recv(100) == b"3"


def test_one_direction_can_be_held_alone(relay):
    relay, echo = relay
    with _connect(relay) as sock:
        # Holding what the server sends: the request arrives, its echo does not
        relay.black_hole(DOWNSTREAM)
        sock.sendall(b"x")
        _wait_for(lambda: bytes(echo.received) == b"x")
        assert _nothing_arrives(sock)
        relay.restore()
        assert sock.recv(100) == b"x"
        # Holding what the client sends: the request does not arrive until restored
        relay.black_hole(UPSTREAM)
        sock.sendall(b"y")
        assert _nothing_arrives(sock)
        assert bytes(echo.received) == b"x"
        relay.restore()
        assert sock.recv(100) == b"y"
        assert bytes(echo.received) == b"xy"
