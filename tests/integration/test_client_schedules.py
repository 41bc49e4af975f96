"""The Python API's schedules (Client.schedules), from a separate process as an application
would use them: the same schedules `taskq schedule` manages, on every broker."""

from __future__ import annotations

import pytest
from test_python_api import answer, run_app

pytestmark = pytest.mark.integration


@pytest.mark.brokers
def test_a_client_adds_pauses_resumes_runs_now_and_removes_a_schedule(deployment):
    # Given a worker
    deployment.start_worker()
    # When an application manages an hourly schedule through the client
    done = run_app(deployment, """
        import json
        from taskq import Client

        with Client() as client:
            added = client.schedules.add("hourly", "data", {"data": [1, 2]},
                                         priority="high", interval=3600)
            paused = client.schedules.pause("hourly")
            listed = client.schedules.list()
            resumed = client.schedules.resume("hourly")
            task = client.schedules.run_now("hourly")
            finished = client.wait(task.id, timeout=30)
            print(json.dumps({"added": added, "paused": paused, "listed": listed,
                              "resumed": resumed, "finished": finished.to_json()}))
    """)
    seen = answer(done)
    # Then each call answered with the schedule as `taskq schedule ... --json` prints it
    assert (seen["added"]["name"], seen["added"]["type"], seen["added"]["paused"]) == \
        ("hourly", "data_processing", False)
    assert seen["paused"]["paused"] is True and seen["paused"]["next_run"] is None
    assert [s["name"] for s in seen["listed"]] == ["hourly"] and seen["listed"][0]["paused"]
    assert seen["resumed"]["paused"] is False and seen["resumed"]["next_run"]
    # And run_now submitted the schedule's task, which a worker ran
    assert seen["finished"]["state"] == "SUCCESS"
    assert seen["finished"]["priority"] == "high"
    assert seen["finished"]["result"]["mean"] == 1.5
    # And the CLI sees the same schedule; once the client removes it, neither does
    shown = deployment.cli_json("schedule", "list")
    assert [(s["name"], s["paused"], s["parameters"]) for s in shown] == \
        [("hourly", False, seen["added"]["parameters"])]
    assert seen["added"]["parameters"]["data"] == [1, 2]
    removed = run_app(deployment, """
        import json
        from taskq import Client

        with Client() as client:
            client.schedules.remove("hourly")
            print(json.dumps(client.schedules.list()))
    """)
    assert answer(removed) == []
    assert deployment.cli_json("schedule", "list") == []
