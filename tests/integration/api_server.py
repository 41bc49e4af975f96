"""A real `taskq api` process for a test deployment, and a small HTTP client for it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import yaml
from smtp_server import free_port

READY_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0


@dataclass
class ApiServer:
    """The server's base URL, and requests that always carry a timeout (and the token)."""

    url: str
    proc: subprocess.Popen[bytes]
    token: str | None = None

    def request(self, method: str, path: str, auth: bool = True, **kwargs: Any
                ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if auth and self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return requests.request(method, self.url + path, headers=headers,
                                timeout=HTTP_TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def wait_final(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll GET /api/tasks/<id> as the seed's clients do, until the task is final."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(f"/api/tasks/{task_id}").json()
            if body["state"] in ("SUCCESS", "FAILURE", "REVOKED"):
                return body  # type: ignore[no-any-return]
            time.sleep(0.1)  # polling for a state change
        raise AssertionError(f"task {task_id} not final after {timeout} s: {body}")


def configure_api(deployment: Any, **api: Any) -> None:
    """Add an api section to the deployment's config file."""
    path = deployment.env["TASKQ_CONFIG"]
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["api"] = api
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)


@contextmanager
def running_api(deployment: Any, token: str | None = None) -> Iterator[ApiServer]:
    """Start `taskq api` on a free port and wait until /healthz answers 200."""
    port = free_port()
    log = (deployment.home / "api.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "taskq", "api", "--port", str(port)],
                            env=deployment.env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=deployment.home)
    log.close()
    server = ApiServer(f"http://127.0.0.1:{port}", proc, token)
    try:
        _wait_ready(server, deployment)
        yield server
    finally:
        proc.terminate()
        proc.wait(15)


def _wait_ready(server: ApiServer, deployment: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, (deployment.home / "api.log").read_text()
        try:
            if server.get("/healthz").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)  # polling for readiness
    raise AssertionError("api not ready: " + (deployment.home / "api.log").read_text())
