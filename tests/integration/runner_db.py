"""Which database of the shared Redis a test runner uses."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16  # redis-server's default `databases`


def runner_database(url: str, runner: str) -> str:
    """`url` with its database moved on by the runner's number (gw0: +0, gw1: +1, …).

    A run without pytest-xdist (`runner` empty) keeps the database it was given.
    """
    if not runner:
        return url
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    database = base + int(runner.removeprefix("gw"))
    if database >= REDIS_DATABASES:
        raise ValueError(f"test runner {runner} would need Redis database {database} "
                         f"(base {base}): use fewer runners or a lower database in {url}")
    return urlunsplit(parts._replace(path=f"/{database}"))
