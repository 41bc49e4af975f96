"""A TCP relay of a test's own in front of a server, that the test can cut or slow down: a
shared server itself is never stopped."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading


class Relay:
    """Forwards every connection made to 127.0.0.1:`port` to `target` (host and port, or a
    unix socket's path). A test can cut a connection once it has sent a number of bytes (an
    abrupt reset, mid-frame), reset every connection, refuse new ones, and hold back what the
    open connections send either way (a late packet), while new connections flow."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.sent = 0  # bytes forwarded to the server, over every connection
        self._cut_at: int | None = None  # in `sent`
        self._refuse_after_cut = False
        self.cut = threading.Event()  # set once a connection was cut
        self.refusing = False
        self._links: list[_Link] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, more: int, then_refuse: bool = False) -> None:
        """Reset the connection that sends the byte `more` bytes from now, after forwarding
        the bytes before it (mid-frame, as a dropped link would); with `then_refuse`, refuse
        every connection after."""
        self._refuse_after_cut = then_refuse
        self._cut_at = self.sent + more

    def hold_replies(self) -> None:
        """What the server sends on the open connections waits (until released or reset)."""
        for link in self._links:
            link.down.clear()

    def release_replies(self) -> None:
        for link in self._links:
            link.down.set()

    def hold_requests(self) -> None:
        """What the clients send on the open connections waits, even past their close."""
        for link in self._links:
            link.up.clear()

    def release_requests(self) -> list[_Link]:
        """Let what was held go on; returns the connections it was held on."""
        held = [link for link in self._links if not link.up.is_set()]
        for link in held:
            link.up.set()
        return held

    def reset_all(self) -> None:
        """Reset every open connection (what they held back is lost); new ones are relayed."""
        links, self._links = self._links, []
        for link in links:
            link.reset()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _reset(client)
                continue
            link = _Link(client, _connect(self.target))
            self._links.append(link)
            threading.Thread(target=self._pump_up, args=(link,), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(link,), daemon=True).start()

    def _pump_up(self, link: _Link) -> None:
        while (data := _recv(link.client)) is not None:
            cut_at = self._cut_at
            if cut_at is not None and self.sent + len(data) > cut_at:
                self._cut_at = None
                _send(link.server, data[:cut_at - self.sent])
                self.sent = cut_at
                if self._refuse_after_cut:
                    self.refusing = True
                link.reset()
                self.cut.set()
                return
            link.up.wait()
            self.sent += len(data)
            if not _send(link.server, data):
                break
        link.up.wait()  # the client is gone: what it sent is delivered, then the end of it
        with contextlib.suppress(OSError):
            link.server.shutdown(socket.SHUT_WR)

    def _pump_down(self, link: _Link) -> None:
        while (data := _recv(link.server)) is not None:
            link.down.wait()
            if not _send(link.client, data):
                break
        link.reset()
        link.finished.set()


class _Link:
    """One relayed connection: its two sockets, and whether each way flows."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.up = threading.Event()
        self.down = threading.Event()
        self.up.set()
        self.down.set()
        self.finished = threading.Event()  # the server closed it (after what it was sent)

    def reset(self) -> None:
        self.up.set()
        self.down.set()
        _reset(self.client)
        _reset(self.server)


def _connect(target: tuple[str, int] | str) -> socket.socket:
    if isinstance(target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target)
        return sock
    return socket.create_connection(target, timeout=5)


def _recv(sock: socket.socket) -> bytes | None:
    """The next bytes from `sock`; None once it is closed or reset."""
    try:
        while not select.select([sock], [], [], 0.1)[0]:
            if sock.fileno() < 0:
                return None
        sock.settimeout(None)
        data = sock.recv(65536)
    except (OSError, ValueError):
        return None
    return data or None


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a reset (RST), as a dropped link or a killed peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
