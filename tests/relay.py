"""A TCP relay for tests: a port of the test's own in front of a server, that the test can
cut and black-hole to play a broker restart or a network partition.

    with Relay(("127.0.0.1", 5672)) as relay:   # listens on a free 127.0.0.1 port
        url = f"amqp://guest:guest@127.0.0.1:{relay.port}/vhost"
        relay.cut()           # every connection closed, new ones refused: a server down
        relay.restore()       # listening again on the same port, forwarding as before
        relay.black_hole()    # connections held open, nothing forwarded: a partition
        relay.black_hole(UPSTREAM)   # only what clients send is held back
        relay.restore()       # what was held back flows on
        relay.drained()       # True once nothing that clients sent waits in the relay
        relay.reset_all()     # every open connection reset (RST); new ones relayed
        relay.cut_after(n)    # reset the connection that sends the n-th byte from now,
                              # after forwarding the bytes before it (mid-frame)

A black hole holds bytes back rather than dropping them, as TCP does across a partition that
heals before the connection times out: nothing is read from the held side, so its bytes wait
in the kernel's buffers and arrive, in order, once restored. New connections made meanwhile
are accepted and held the same way. Each direction of each connection is pumped by a thread
of its own; everything stops with `close()` (or the end of the `with` block).
"""

from __future__ import annotations

import contextlib
import fcntl
import select
import socket
import struct
import termios
import threading
import time
from contextlib import AbstractContextManager
from types import TracebackType

UPSTREAM = "upstream"  # client to server
DOWNSTREAM = "downstream"  # server to client
BOTH = frozenset({UPSTREAM, DOWNSTREAM})
CONNECT_TIMEOUT = 5.0
POLL = 0.05  # seconds a pump waits before looking at the relay's state again
CHUNK = 65536


class Relay(AbstractContextManager["Relay"]):
    """Forwards every connection to 127.0.0.1:<port> to `target` (host and port, or a unix
    socket's path) until cut or closed."""

    def __init__(self, target: tuple[str, int] | str, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self.sent = 0  # bytes forwarded to the server, over every connection
        self.was_cut = threading.Event()  # set once cut_after() has cut a connection
        self._cut_at: int | None = None  # in `sent`
        self._refuse_after_cut = False
        self._lock = threading.Lock()
        self.gate = threading.Lock()  # taken to change what is held, and by a pump to read
        self._held: frozenset[str] = frozenset()
        self._connections: list[_Pair] = []
        self._listener: socket.socket | None = None
        self._closed = False
        self._listen()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def address(self) -> str:
        """host:port of the relay, to put in a URL instead of the server's."""
        return f"{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections open through the relay now."""
        with self._lock:
            return sum(1 for pair in self._connections if not pair.closed)

    def cut(self) -> None:
        """Close every connection and refuse new ones (nothing listens on the port)."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._connections = self._connections, []
        if listener is not None:
            _close(listener)
        for pair in pairs:
            pair.close()

    def reset_all(self) -> None:
        """Reset (RST) every open connection, as a dropped link or a killed peer would; what
        they held back is lost. New connections are relayed."""
        with self._lock:
            pairs, self._connections = self._connections, []
        for pair in pairs:
            pair.reset()

    def cut_after(self, more: int, then_refuse: bool = False) -> None:
        """Reset the connection that sends the byte `more` bytes from now, after forwarding
        the bytes before it; with `then_refuse`, cut() the relay right after."""
        self._refuse_after_cut = then_refuse
        self._cut_at = self.sent + more

    def black_hole(self, directions: str | frozenset[str] = BOTH, *,
                   new_too: bool = True) -> None:
        """Hold connections open but forward nothing in `directions` (UPSTREAM, DOWNSTREAM
        or BOTH), on the connections open now and, unless `new_too` is False, on new ones
        (a partition; with new_too=False, a stalled connection while new ones get through)."""
        held = frozenset({directions}) if isinstance(directions, str) else directions
        assert held <= BOTH, held
        with self.gate, self._lock:
            self._held = held if new_too else frozenset()
            for pair in self._connections:
                pair.held = held

    def restore(self) -> list[_Pair]:
        """Forward everything again, listening again on the same port after a cut; returns
        the open connections that were holding back what they were given."""
        with self.gate, self._lock:
            self._held = frozenset()
            pairs = [pair for pair in self._connections if pair.held and not pair.closed]
            for pair in self._connections:
                pair.held = frozenset()
        if self._listener is None and not self._closed:
            self._listen()
        return pairs

    def drained(self) -> bool:
        """True when no connection has bytes from its client waiting to be forwarded: after
        restore(), what was held back has been passed on to the server."""
        with self._lock:
            pairs = [pair for pair in self._connections if not pair.closed]
        return all(pair.held == frozenset() and _unread(pair.client) == 0 for pair in pairs)

    def close(self) -> None:
        """Stop for good: every connection closed, the port released."""
        self._closed = True
        self.cut()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name=f"relay-accept-{self.port}").start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                # (a close from another thread does not wake a blocked accept: poll)
                ready, _, _ = select.select([listener], [], [], POLL)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # the listener was closed: cut or closed
                return
            try:
                server = _connect(self.target)
            except OSError:
                _close(client)  # the server is down: so is the relay, for this client
                continue
            pair = _Pair(self, client, server)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    pair.close()
                    return
                self._connections.append(pair)
            pair.start()


class _Pair:
    """One relayed connection: a client socket, a server socket and a pump each way."""

    def __init__(self, relay: Relay, client: socket.socket, server: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.server = server
        self.closed = False
        self.held = relay._held  # the directions that forward nothing now
        self.finished = threading.Event()  # set once the server side has closed
        for sock in (client, server):
            sock.settimeout(None)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self) -> None:
        for source, sink, direction in ((self.client, self.server, UPSTREAM),
                                        (self.server, self.client, DOWNSTREAM)):
            threading.Thread(target=self._pump, args=(source, sink, direction),
                             daemon=True, name=f"relay-{direction}").start()

    def close(self) -> None:
        self.closed = True
        for sock in (self.client, self.server):
            _close(sock)

    def reset(self) -> None:
        """Close both sockets with a reset (RST)."""
        self.closed = True
        for sock in (self.client, self.server):
            _reset(sock)

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while not self.closed:
                if direction in self.held:
                    time.sleep(POLL)  # held back: nothing is read, the bytes wait
                    continue
                ready, _, _ = select.select([source], [], [], POLL)
                if not ready:
                    continue
                with self.relay.gate:  # nothing is read once black_hole() has returned
                    if direction in self.held:
                        continue
                    data = source.recv(CHUNK)
                if not data:
                    break
                if direction == UPSTREAM and not self._forward_up(data):
                    return
                if direction == DOWNSTREAM:
                    sink.sendall(data)
        except (OSError, ValueError):  # closed under us (cut), or reset by a peer
            pass
        if direction == UPSTREAM and not self.closed:
            # The client is done: the server gets the end of what it sent and answers it;
            # the connection closes when the server closes its side.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            return
        self.close()
        self.finished.set()

    def _forward_up(self, data: bytes) -> bool:
        """Send `data` to the server, counting it, unless a cut_after() falls inside it:
        then forward what comes before the cut and reset; False once reset."""
        relay = self.relay
        cut_at = relay._cut_at
        if cut_at is not None and relay.sent + len(data) > cut_at:
            relay._cut_at = None
            self.server.sendall(data[:cut_at - relay.sent])
            relay.sent = cut_at
            self.reset()
            relay.was_cut.set()
            if relay._refuse_after_cut:
                relay.cut()
            return False
        relay.sent += len(data)
        self.server.sendall(data)
        return True


def _connect(target: tuple[str, int] | str) -> socket.socket:
    if isinstance(target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(target)
        return sock
    return socket.create_connection(target, timeout=CONNECT_TIMEOUT)


def _unread(sock: socket.socket) -> int:
    """Bytes received on `sock` and not read yet (0 once it is closed)."""
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", buf)[0])


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a reset (RST)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
