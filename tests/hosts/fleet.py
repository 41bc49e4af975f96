"""Real hosts on one machine: a Linux network namespace per host, joined to this one by a veth
pair, whose processes reach the shared RabbitMQ and Redis (which listen on 127.0.0.1 only)
through a TCP relay of the tests' own bound to the veth's address on this side. The relays
are the fault injector: black-hole a host's broker and Redis traffic, one way or both.

    with Fleet(hosts=2) as fleet:
        host = fleet.hosts[0]
        env = host.env(deployment.env)      # URLs through host's relays
        host.popen(["python", "-m", "taskq", "worker"], env=env)
        host.black_hole()                   # a partition; host.restore() heals it

Every name carries a tag of this run (namespaces `tq<tag><n>`, veths `tq<tag><n>h`/`...n`,
at most 15 characters) and each host gets a /30 of 10.213.<x>.0/24, <x> picked for this run
among those no interface of this machine uses; close() (or the end of the `with` block)
kills the hosts' processes, closes the relays and deletes the namespaces (and with them the
veths), whatever happened before.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from relay import BOTH, Relay

if TYPE_CHECKING:
    from integration.conftest import Deployment

RANGE = "10.213"  # the tests' own: 10.213.<x>.0/24 per run, a /30 per host in it
HEARTBEAT = 2.0  # seconds between AMQP heartbeats on the hosts' broker connections
SERVERS = {"amqp": ("127.0.0.1", 5672), "redis": ("127.0.0.1", 6379)}


class NamespacesUnavailable(Exception):
    """Raised when this machine does not let the tests make network namespaces."""


@dataclass
class Host:
    """One host: a namespace, its address, and a relay per server in front of it."""

    name: str
    netns: str
    address: str  # the host's own, inside its namespace
    gateway: str  # this side of its veth, where its relays listen
    relays: dict[str, Relay] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, url: str) -> str:
        """`url` (of 127.0.0.1:5672 or :6379) as this host reaches it: through its relay."""
        parts = urlsplit(url)
        kind = "amqp" if parts.scheme.startswith("amqp") else "redis"
        netloc = parts.netloc.rpartition("@")
        auth = netloc[0] + "@" if netloc[1] else ""
        return urlunsplit(parts._replace(netloc=f"{auth}{self.relays[kind].address}"))

    def env(self, env: dict[str, str], *, heartbeat: float | None = None) -> dict[str, str]:
        """A deployment's environment with its broker and Redis URLs through this host's
        relays; `heartbeat` (seconds) asks RabbitMQ for AMQP heartbeats that often."""
        out = dict(env)
        for name in ("TASKQ_BROKER_URL", "TASKQ_RESULT_BACKEND"):
            if out.get(name):
                out[name] = self.url(out[name])
        broker = out.get("TASKQ_BROKER_URL", "")
        if heartbeat is not None and broker.startswith("amqp"):
            joint = "&" if "?" in broker else "?"
            out["TASKQ_BROKER_URL"] = f"{broker}{joint}heartbeat={heartbeat:g}"
        return out

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start `argv` in this host's namespace (in a session of its own: killpg-able)."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.netns, *argv], start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run `argv` in this host's namespace to the end; text output captured."""
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            ["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True,
            **kwargs)

    def black_hole(self, directions: str | frozenset[str] = BOTH) -> None:
        """Cut the host off (`directions`: UPSTREAM, from the host; DOWNSTREAM, to it; or
        BOTH): its connections stay open, nothing gets through, as in a partition."""
        for relay in self.relays.values():
            relay.black_hole(directions)

    def restore(self) -> None:
        """Heal the partition: what was held back flows on, in order."""
        for relay in self.relays.values():
            relay.restore()

    def drained(self) -> bool:
        """After restore(): everything the host sent meanwhile has reached the servers."""
        return all(relay.drained() for relay in self.relays.values())

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


class Fleet(AbstractContextManager["Fleet"]):
    """`hosts` namespaces with their veths and relays, removed again by close()."""

    def __init__(self, hosts: int) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.hosts: list[Host] = []
        self._links: list[str] = []
        try:
            subnet = _free_subnet()
            for n in range(hosts):
                self._make(n, subnet)
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process of every host, close the relays, delete namespaces and veths."""
        for host in self.hosts:
            host.kill()
            for relay in host.relays.values():
                relay.close()
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)
        for link in self._links:  # gone with their namespace, unless it was never made
            _ip("link", "del", link, check=False)
        self.hosts.clear()

    def _make(self, n: int, subnet: str) -> None:
        netns, outer, inner = f"tq{self.tag}{n}", f"tq{self.tag}{n}h", f"tq{self.tag}{n}n"
        gateway, address = f"{subnet}.{4 * n + 1}", f"{subnet}.{4 * n + 2}"
        host = Host(name=f"host{n}", netns=netns, address=address, gateway=gateway)
        self.hosts.append(host)  # from here on, close() removes what was made
        try:
            _ip("netns", "add", netns)
        except subprocess.CalledProcessError as exc:
            raise NamespacesUnavailable(f"`ip netns add` failed: {exc.stderr.strip()}") from None
        self._links.append(outer)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", netns)
        _ip("addr", "add", f"{gateway}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", netns, "addr", "add", f"{address}/30", "dev", inner)
        _ip("-n", netns, "link", "set", inner, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        host.relays = {kind: Relay(target, host=gateway) for kind, target in SERVERS.items()}


def start_worker(dep: Deployment, host: Host, *args: str) -> str:
    """`taskq worker ARGS` on `host`, reaching the deployment through the host's relays;
    its worker name, once it is online. dep.stop_workers() stops it with the others."""
    return dep.wait_worker_ready(launch_worker(dep, host, *args))


def launch_worker(dep: Deployment, host: Host, *args: str) -> subprocess.Popen[bytes]:
    """Start `taskq worker ARGS` on `host` without waiting for it to be online."""
    logs = dep.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"test-worker-{len(dep.workers)}.log").open("ab") as out:
        proc = host.popen([sys.executable, "-m", "taskq", "worker", *args],
                          env=host.env(dep.env, heartbeat=HEARTBEAT), stdout=out,
                          stderr=subprocess.STDOUT, cwd=dep.home)
    dep.workers.append(proc)
    return proc


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took, or fail naming `what`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)  # polling the records
    return time.monotonic() - start


def available() -> str | None:
    """None when this machine lets the tests make namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    try:
        subprocess.run(["ip", "-V"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "the `ip` command (iproute2) is not installed"
    probe = f"tqprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` is not permitted here: {exc.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    """10.213.<x> with an <x> no address of this machine (another run) is in."""
    used = _ip("-4", "-o", "addr", "show").stdout
    free = [x for x in range(256) if f" {RANGE}.{x}." not in used]
    if not free:
        raise NamespacesUnavailable(f"no free /24 left in {RANGE}.0.0/16")
    return f"{RANGE}.{random.choice(free)}"  # noqa: S311 - spreading runs, not secrecy


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)
