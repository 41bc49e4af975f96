"""Property-based run: many generated requests against the served OpenAPI description."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from api_server import configure_api, running_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

pytestmark = pytest.mark.integration

EXAMPLES = 200
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


def test_generated_requests_never_get_a_5xx_and_every_reply_matches_the_schema(deployment):
    # Given the API with a token (no worker: accepted tasks just wait on their queues)
    configure_api(deployment, token="t0ken")
    with running_api(deployment, token="t0ken") as api:
        schema = schemathesis.openapi.from_url(api.url + "/api/openapi.json",
                                               headers={"Authorization": "Bearer t0ken"})
        operations = [result.ok() for result in schema.get_all_operations()]
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        cases = st.one_of([op.as_strategy(generation_mode=m) for op in operations
                           for m in modes])
        seen: Counter[tuple[str, int]] = Counter()

        # When hypothesis sends EXAMPLES requests, valid and invalid, to every operation
        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            response = case.call(base_url=api.url, timeout=10,
                                 headers={"Authorization": "Bearer t0ken"})
            seen[(case.operation.label, response.status_code)] += 1
            # Then none is a server error and every reply is what the schema says
            case.validate_response(response, checks=CHECKS)

        exercise()
    assert sum(seen.values()) >= EXAMPLES
    assert {label for label, _ in seen} >= {"POST /api/tasks", "GET /api/tasks/{task_id}"}
