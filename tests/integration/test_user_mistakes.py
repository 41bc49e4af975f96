"""Every mistake a user can make on the command line is one line on stderr with its
documented exit code (README "Exit codes"), never a traceback; each case runs `taskq` as a
user would, in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from smtp_server import free_port

pytestmark = pytest.mark.integration

DEEP = '{"data": ' + "[" * 10_000 + "]" * 10_000 + "}"


def taskq(deployment, *args: str, stdin: str | bytes | None = None, timeout: float = 60,
          **env: str | None) -> subprocess.CompletedProcess[str]:
    """`taskq ARGS` in the deployment's environment, with `env` changes (None unsets)."""
    changed = dict(deployment.env)
    for name, value in env.items():
        if value is None:
            changed.pop(name, None)
        else:
            changed[name] = value
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run([sys.executable, "-m", "taskq", *args], input=data,
                          capture_output=True, env=changed, timeout=timeout,
                          cwd=deployment.home)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The exit code first, then the error: one line (a config error: its problems under
    it), no traceback. Returns the message."""
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), result.stderr
    assert all(line.startswith("  ") for line in lines[1:]), result.stderr
    return result.stderr.strip()


def bad_config(deployment, name: str, content: bytes) -> str:
    path = deployment.home / name
    path.write_bytes(content)
    return str(path)


# 2: usage

def test_params_nested_10000_levels_exit_2_and_queue_nothing(deployment):
    result = taskq(deployment, "submit", "--type", "data", "--params", DEEP)
    assert one_error(result, 2) == ("error: --params: nested too deeply to read (parameters "
                                    "may have at most 32 levels)")
    assert deployment.nothing_queued()


@pytest.mark.parametrize("timeout", ["nan", "-5", "inf"])
def test_a_wait_timeout_that_is_not_a_duration_exits_2_before_anything_is_queued(
        deployment, timeout):
    result = taskq(deployment, "submit", "--type", "data", "--param", "data=x", "--wait",
                   "--timeout", timeout)
    assert one_error(result, 2).startswith("error: --timeout must be a number of seconds ≥ 0")
    assert deployment.nothing_queued()


@pytest.mark.parametrize(("args", "message"), [
    (("submit", "--type", "data", "--param", "data=x", "--delay", "-1"),
     "error: invalid parameters: delay: must be between 0 and 31622400 seconds"),
    (("submit", "--type", "data", "--param", "data=x", "--delay", "nan"),
     "error: invalid parameters: delay: must be between 0 and 31622400 seconds"),
    (("submit", "--type", "data", "--param", "data=x", "--delay", "1e400"),
     "error: invalid parameters: delay: must be between 0 and 31622400 seconds"),
    (("list", "--limit", "0"), "error: --limit must be between 1 and 1000"),
    (("dlq", "list", "--limit", "-5"), "error: --limit must be between 1 and 1000"),
    (("dlq", "list", "--limit", "1001"), "error: --limit must be between 1 and 1000"),
    (("list", "--since", "garbage"), "error: invalid duration 'garbage': use a number with "
                                     "s, m, h, d or w (e.g. 10m)"),
    (("status", "x", "--wait", "--timeout", "nan"),
     "error: --timeout must be a number of seconds ≥ 0, got nan"),
])
def test_out_of_range_and_garbage_options_exit_2(deployment, args, message):
    assert one_error(taskq(deployment, *args), 2) == message


@pytest.mark.parametrize("port", ["-1", "0", "80000"])
@pytest.mark.parametrize("command", ["api", "flower"])
def test_a_port_outside_1_to_65535_exits_2(deployment, command, port):
    result = taskq(deployment, command, "--port", port, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535." in \
        result.stderr


@pytest.mark.parametrize("token", ["   ", "\t"])
def test_a_blank_api_token_does_not_open_a_non_loopback_port(deployment, token):
    result = taskq(deployment, "api", "--host", "0.0.0.0", "--port", str(free_port()),
                   TASKQ_API_TOKEN=token, timeout=30)
    assert one_error(result, 2).startswith("error: refusing to serve the API on 0.0.0.0 "
                                           "without authentication")


def test_api_without_its_extra_says_what_to_install(deployment, tmp_path):
    # Given an environment where waitress cannot be imported (as without the api extra)
    shadow = tmp_path / "no_waitress" / "waitress"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'waitress'\", name='waitress')\n")
    path = os.pathsep.join([str(shadow.parent), deployment.env["PYTHONPATH"]])
    result = taskq(deployment, "api", "--port", str(free_port()), PYTHONPATH=path)
    assert one_error(result, 2) == ("error: the REST API is not installed (waitress is "
                                    "missing): pip install 'taskq[api]'")


@pytest.mark.parametrize("command", ["flower", "api"])
def test_a_taken_port_is_said_in_one_line(deployment, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = taskq(deployment, command, "--port", str(port), timeout=60)
    assert one_error(result, 2) == (f"error: port {port} on 127.0.0.1 is taken by another "
                                    "program: choose another with --port")


def test_an_address_that_cannot_be_listened_on_exits_2(deployment):
    api = taskq(deployment, "api", "--host", "no-such-host.invalid", "--port", "5000",
                TASKQ_API_TOKEN="s3cret", timeout=30)
    assert one_error(api, 2) == ("error: cannot listen on no-such-host.invalid:5000: "
                                 "Invalid host/port specified.")
    flower = taskq(deployment, "flower", "--address", "no-such-host.invalid", "--port", "5555",
                   "--basic-auth", "ops:s3cret", timeout=30)
    assert one_error(flower, 2).startswith("error: cannot listen on no-such-host.invalid:5555: ")


def test_bulk_input_on_stdin_that_is_not_utf8_exits_2(deployment):
    result = taskq(deployment, "submit", "--from", "-",
                   stdin=b'{"task_type": "data", "parameters": {"data": "\xff"}}\n')
    assert one_error(result, 2) == "error: stdin is not UTF-8 text: invalid start byte at " \
                                   "byte 46"


# 3: configuration

@pytest.mark.parametrize(("content", "problem"), [
    (b"\x00\x01\x02\xff\xfe", "not UTF-8 text: invalid start byte at byte 3"),
    (b'key_prefix: "caf\xe9"\n', "not UTF-8 text: invalid continuation byte at byte 16"),
    (b"a: " + b"[" * 5000 + b"]" * 5000, "nested deeper than 16 levels"),
], ids=["binary", "not UTF-8", "5000 levels"])
@pytest.mark.parametrize("command", [("config", "check"), ("status", "x")])
def test_a_config_file_that_cannot_be_read_exits_3(deployment, content, problem, command):
    path = bad_config(deployment, "bad.yaml", content)
    result = taskq(deployment, *command, TASKQ_CONFIG=path)
    assert one_error(result, 3) == f"error: invalid configuration in {path}:\n  {problem}"


@pytest.mark.parametrize(("url", "problem"), [
    ("redis://127.0.0.1:99999/0", "port must be a number from 1 to 65535"),
    ("redis://127.0.0.1:6379/abc", "database must be a number, e.g. redis://host:6379/0"),
])
@pytest.mark.parametrize("command", [("config", "check"), ("submit", "--type", "data",
                                                            "--param", "data=x")])
def test_a_redis_url_that_cannot_work_exits_3(deployment, url, problem, command):
    result = taskq(deployment, *command, TASKQ_BROKER_URL=url, TASKQ_RESULT_BACKEND=url)
    message = one_error(result, 3)
    assert f"  broker_url: {problem}" in message
    assert f"  result_backend: {problem}" in message


def test_an_unimportable_task_function_fails_config_check(deployment):
    path = bad_config(deployment, "fn.yaml", (
        b"task_types:\n  mine:\n    function: nonexistent.module:fn\n"
        b"workers:\n  w: {types: all}\n"))
    result = taskq(deployment, "config", "check", TASKQ_CONFIG=path)
    assert one_error(result, 3) == (
        f"error: invalid configuration in {path}:\n  task_types.mine.function: cannot import "
        "nonexistent.module:fn (ModuleNotFoundError: No module named 'nonexistent')")


def test_a_record_ttl_too_large_for_redis_exits_3(deployment):
    text = Path(deployment.env["TASKQ_CONFIG"]).read_text()
    path = bad_config(deployment, "ttl.yaml", (text + "\nrecord_ttl: 10000000000000000000000"
                                               ).encode())
    result = taskq(deployment, "submit", "--type", "data", "--param", "data=x",
                   TASKQ_CONFIG=path)
    assert one_error(result, 3).endswith("  record_ttl: must be ≤ 3.1536e+08")


def unwritable_homes(tmp_path: Path) -> list[Path]:
    """Homes taskq cannot create or write: under a file, under /proc, and (unless root,
    who may write anywhere) in a read-only directory."""
    (tmp_path / "a-file").write_text("")
    homes = [tmp_path / "a-file" / "home", Path("/proc/taskq-test-home")]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        homes.append(locked / "home")
    return homes


@pytest.mark.parametrize("command", [("submit", "--type", "data", "--param", "data=x"),
                                     ("worker",), ("up",)])
def test_a_home_that_cannot_be_written_exits_3(deployment, tmp_path, command):
    for home in unwritable_homes(tmp_path):
        result = taskq(deployment, *command, TASKQ_HOME=str(home))
        message = one_error(result, 3)
        assert f" files in {home} (" in message
        assert "\n  home: cannot write " in message
        assert message.endswith("set TASKQ_HOME (or home) to a directory taskq can write")


def test_an_invalid_utf8_task_id_is_an_unknown_id(deployment):
    deployment.runtime.broker_url  # a running broker (reads do not start one)  # noqa: B018
    for command in ("status", "cancel", "retry"):
        result = subprocess.run([sys.executable, "-m", "taskq", command, b"\xff\xfe"],
                                capture_output=True, env=deployment.env, timeout=60)
        assert result.returncode == 4, result.stderr
        assert result.stderr.decode().startswith("error: unknown task id '\\udcff\\udcfe'")


# 7: unreachable (the URL named, its password masked)

@pytest.mark.brokers("redis")
@pytest.mark.parametrize("command", [("status", "x"), ("submit", "--type", "data", "--param",
                                                       "data=x")])
def test_a_redis_database_the_server_does_not_have_exits_7(deployment, command):
    url = deployment.env["TASKQ_RESULT_BACKEND"].rpartition("/")[0] + "/99"
    result = taskq(deployment, *command, TASKQ_BROKER_URL=url, TASKQ_RESULT_BACKEND=url)
    message = one_error(result, 7)
    assert f"unreachable at {url} (database 99 refused: DB index is out of range)" in message


@pytest.mark.brokers("rabbitmq")
@pytest.mark.parametrize("command", [("submit", "--type", "data", "--param", "data=x"),
                                     ("submit", "--type", "data", "--param", "data=x",
                                      "--delay", "5"), ("queues",)])
@pytest.mark.parametrize("mistake", ["password", "vhost"])
def test_an_amqp_url_with_a_wrong_password_or_vhost_exits_7_naming_it_masked(
        deployment, command, mistake):
    # The test vhost's URL, with its password or its vhost wrong
    scheme, _, rest = deployment.env["TASKQ_BROKER_URL"].partition("://")
    host = rest.rpartition("@")[2].partition("/")[0]
    url = (f"{scheme}://guest:wr@ng-s3cret@{host}//" if mistake == "password"
           else f"{scheme}://guest:guest@{host}/no-such-vhost-{os.getpid()}")
    result = taskq(deployment, *command, TASKQ_BROKER_URL=url)
    message = one_error(result, 7)
    masked = url.replace("wr@ng-s3cret", "***").replace("guest:guest", "guest:***")
    assert message.startswith(f"error: broker unreachable at {masked} (")
    assert "s3cret" not in message
    assert ("ACCESS_REFUSED" if mistake == "password" else "NOT_ALLOWED") in message
    assert deployment.runtime.store.client.zcard(f"{deployment.runtime.settings.key_prefix}"
                                                 ":tasks") == 0


# A password with an unencoded @ is masked whole wherever a URL is shown

PASSWORD_URL = "redis://:p@ss@w0rd@127.0.0.1:1/0"


def test_a_password_holding_at_signs_is_masked_in_config_show_and_errors(deployment):
    env = {"TASKQ_BROKER_URL": PASSWORD_URL, "TASKQ_RESULT_BACKEND": PASSWORD_URL}
    shown = taskq(deployment, "config", "show", "--json", **env)
    assert shown.returncode == 0, shown.stderr
    assert '"broker_url": "redis://:***@127.0.0.1:1/0"' in shown.stdout
    failed = taskq(deployment, "status", "x", **env)
    assert one_error(failed, 7).startswith(
        "error: result backend unreachable at redis://:***@127.0.0.1:1/0 (")
    for text in (shown.stdout, failed.stderr):
        assert "ss@w0rd" not in text and "w0rd" not in text


def test_a_password_holding_at_signs_is_masked_in_healthz(deployment):
    env = dict(deployment.env, TASKQ_BROKER_URL=PASSWORD_URL, TASKQ_RESULT_BACKEND=PASSWORD_URL)
    port = free_port()
    with (deployment.home / "api.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "taskq", "api", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        body = _first_answer(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        proc.terminate()
        proc.wait(15)
    assert body["broker"]["url"] == body["backend"]["url"] == "redis://:***@127.0.0.1:1/0"
    assert "w0rd" not in str(body)


def _first_answer(url: str, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "api exited"
        try:
            reply = requests.get(url, timeout=15)
        except requests.ConnectionError:
            time.sleep(0.05)  # polling for readiness
            continue
        assert reply.status_code == 503
        return reply.json()  # type: ignore[no-any-return]
    raise AssertionError("api not answering")
