"""A TCP relay for tests: a port of the test's own in front of a server, that the test can
cut and black-hole to play a broker restart or a network partition.

    with Relay(("127.0.0.1", 5672)) as relay:   # listens on a free 127.0.0.1 port
        url = f"amqp://guest:guest@127.0.0.1:{relay.port}/vhost"
        relay.cut()           # every connection closed, new ones refused: a server down
        relay.restore()       # listening again on the same port, forwarding as before
        relay.black_hole()    # connections held open, nothing forwarded: a partition
        relay.black_hole(UPSTREAM)   # only what clients send is held back
        relay.restore()       # what was held back flows on

A black hole holds bytes back rather than dropping them, as TCP does across a partition that
heals before the connection times out: nothing is read from the held side, so its bytes wait
in the kernel's buffers and arrive, in order, once restored. New connections made meanwhile
are accepted and held the same way. Each direction of each connection is pumped by a thread
of its own; everything stops with `close()` (or the end of the `with` block).
"""

from __future__ import annotations

import select
import socket
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
    """Forwards every connection to 127.0.0.1:<port> to `target` until cut or closed."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
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

    def black_hole(self, directions: str | frozenset[str] = BOTH) -> None:
        """Hold connections open but forward nothing in `directions` (UPSTREAM, DOWNSTREAM
        or BOTH), on the connections open now and on new ones."""
        held = frozenset({directions}) if isinstance(directions, str) else directions
        assert held <= BOTH, held
        with self.gate:
            self._held = held

    def restore(self) -> None:
        """Forward everything again, listening again on the same port after a cut."""
        with self.gate:
            self._held = frozenset()
        if self._listener is None and not self._closed:
            self._listen()

    def close(self) -> None:
        """Stop for good: every connection closed, the port released."""
        self._closed = True
        self.cut()

    def held(self, direction: str) -> bool:
        return direction in self._held

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
                server = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
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
        for sock in (client, server):
            sock.settimeout(None)
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

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while not self.closed:
                if self.relay.held(direction):
                    time.sleep(POLL)  # held back: nothing is read, the bytes wait
                    continue
                ready, _, _ = select.select([source], [], [], POLL)
                if not ready:
                    continue
                with self.relay.gate:  # nothing is read once black_hole() has returned
                    if self.relay.held(direction):
                        continue
                    data = source.recv(CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):  # closed under us (cut), or reset by a peer
            pass
        self.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
