"""The bare RESP connection leaves the URLs it does not fully understand to redis-py."""

from __future__ import annotations

import pytest

from taskq.store import resp


@pytest.mark.parametrize("url", ["rediss://host:6380/0", "redis://host/0?ssl_cert_reqs=none",
                                 "sentinel://host:26379"])
def test_a_url_it_does_not_handle_is_left_to_redis_py(url):
    assert resp.connect(url, 0.1, 0.1) is None
