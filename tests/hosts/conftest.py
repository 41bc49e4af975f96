"""Fixtures for the tests on many hosts: the integration tests' isolated deployments (own
vhost, Redis database and key prefix), and a fleet of network-namespace hosts (fleet.py)
whose workers reach that deployment's RabbitMQ and Redis through relays that can cut them off.

Where this machine does not allow network namespaces (not root, no iproute2, a container
without CAP_NET_ADMIN) the tests skip saying so; with CI=true they fail instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fleet import Fleet, available
from integration.conftest import (  # noqa: F401 - fixtures and hooks, shared as they are
    Deployment,
    deployment,
    pytest_generate_tests,
    rabbitmq_url,
    redis_url,
    unavailable,
)
from integration.conftest import pytest_configure as integration_configure


def pytest_configure(config: pytest.Config) -> None:
    integration_configure(config)
    # pytest-xdist's own mark (it keeps the host tests on one runner); known without it too
    config.addinivalue_line("markers", "xdist_group(name): run on one pytest-xdist runner")


@pytest.fixture(scope="session")
def namespaces() -> None:
    """Skip (fail in CI) unless this machine lets the tests make network namespaces."""
    reason = available()
    if reason is not None:
        unavailable(f"no network namespaces for the host tests: {reason}")


@pytest.fixture
def fleet(namespaces: None) -> Iterator[Callable[[int], Fleet]]:
    """Makes a fleet of n hosts, removed at the end of the test whatever happens."""
    made: list[Fleet] = []

    def make(hosts: int) -> Fleet:
        made.append(Fleet(hosts))
        return made[-1]

    yield make
    for one in made:
        one.close()
