"""email_sending work against a real SMTP server on 127.0.0.1, and the outbox."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from smtp_server import SmtpServer, free_port

from taskq.config import SmtpSettings
from taskq.errors import PermanentError, TransientError
from taskq.work import WorkContext
from taskq.work.email import parse_url, send

PASSWORD = "s3cr/t@pw"  # characters that need URL-encoding, to check decoding and masking


def context(url: str | None, tmp_path: Path, timeout: float = 5) -> WorkContext:
    return WorkContext(smtp=SmtpSettings(url=url, sender="taskq@example.org", timeout=timeout),
                       outbox=tmp_path / "outbox", files_root=tmp_path, output_dir="out")


@pytest.fixture
def auth_server() -> Iterator[SmtpServer]:
    with SmtpServer(credentials=("mailer", PASSWORD)) as server:
        yield server


def test_a_delivered_message_arrives_with_the_right_headers(smtp_server: SmtpServer,
                                                            tmp_path: Path) -> None:
    # Given a server that accepts everything
    # When a message with a Cc is sent
    result = send(context(smtp_server.url, tmp_path), to=["a@example.com"],
                  cc=["Bob <b@example.com>"], subject="Report", body="All good.\n")
    # Then both recipients get it, with every header set
    assert result["delivered"] == "smtp"
    assert result["accepted"] == ["a@example.com", "b@example.com"]
    assert result["refused"] == {}
    [received] = smtp_server.messages
    assert received.mail_from == "taskq@example.org"
    assert received.rcpt_tos == ["a@example.com", "b@example.com"]
    message = received.message
    assert (message["From"], message["To"], message["Cc"], message["Subject"]) == (
        "taskq@example.org", "a@example.com", "Bob <b@example.com>", "Report")
    assert message["Message-ID"] == result["message_id"]
    assert message["Date"]
    assert message.get_content() == "All good.\n"


def test_the_sender_parameter_overrides_the_configured_one(smtp_server: SmtpServer,
                                                           tmp_path: Path) -> None:
    send(context(smtp_server.url, tmp_path), to=["a@example.com"], sender="me@example.net")
    assert smtp_server.messages[0].message["From"] == "me@example.net"
    assert smtp_server.messages[0].message["Message-ID"].endswith("@example.net>")


def test_a_451_reply_is_transient_and_keeps_the_reply(smtp_server: SmtpServer,
                                                      tmp_path: Path) -> None:
    smtp_server.script("451 4.3.0 try again later")
    with pytest.raises(TransientError) as caught:
        send(context(smtp_server.url, tmp_path), to=["a@example.com"])
    assert str(caught.value) == (f"SMTP 451 from 127.0.0.1:{smtp_server.port}: "
                                 "4.3.0 try again later")


def test_delivery_succeeds_once_the_scripted_failures_are_used_up(smtp_server: SmtpServer,
                                                                  tmp_path: Path) -> None:
    # Given a server that defers twice, then accepts
    smtp_server.script("451 4.3.0 try again later", "451 4.3.0 try again later")
    ctx = context(smtp_server.url, tmp_path)
    # When delivery is attempted three times
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(send(ctx, to=["a@example.com"])["delivered"])
        except TransientError:
            outcomes.append("retry")
    # Then the third attempt delivers
    assert outcomes == ["retry", "retry", "smtp"]
    assert smtp_server.attempts["data"] == 3
    assert len(smtp_server.messages) == 1


def test_a_550_reply_to_data_is_permanent(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.refuse("550 5.7.1 message rejected", stage="data")
    with pytest.raises(PermanentError, match=r"^SMTP 550 from .*: 5\.7\.1 message rejected$"):
        send(context(smtp_server.url, tmp_path), to=["a@example.com"])


def test_an_unknown_recipient_is_permanent(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.refuse("550 5.1.1 no such user")
    with pytest.raises(PermanentError) as caught:
        send(context(smtp_server.url, tmp_path), to=["nobody@example.com"])
    assert str(caught.value) == (
        f"every recipient refused: SMTP 550 from 127.0.0.1:{smtp_server.port} "
        "for nobody@example.com: 5.1.1 no such user")


def test_recipients_all_deferred_is_transient(smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.refuse("450 4.2.0 mailbox busy")
    with pytest.raises(TransientError, match="SMTP 450 .* 4.2.0 mailbox busy"):
        send(context(smtp_server.url, tmp_path), to=["a@example.com", "b@example.com"])


def test_one_refused_recipient_among_several_is_reported_not_raised(
        smtp_server: SmtpServer, tmp_path: Path) -> None:
    smtp_server.refuse("550 5.1.1 no such user", addresses=["gone@example.com"])
    result = send(context(smtp_server.url, tmp_path), to=["a@example.com", "gone@example.com"])
    assert result["accepted"] == ["a@example.com"]
    assert result["refused"] == {"gone@example.com": "550 5.1.1 no such user"}
    assert smtp_server.messages[0].rcpt_tos == ["a@example.com"]


def test_a_refused_connection_is_transient(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(TransientError, match=f"127.0.0.1:{port}: connection refused"):
        send(context(f"smtp://127.0.0.1:{port}", tmp_path), to=["a@example.com"])


def test_a_server_that_never_answers_is_a_transient_timeout(tmp_path: Path) -> None:
    # Given a socket that accepts connections but never greets
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        # When a message is sent with a short timeout
        # Then it fails as a timeout, which may pass
        with pytest.raises(TransientError, match=r"no reply from SMTP server .* within 0.3 s"):
            send(context(url, tmp_path, timeout=0.3), to=["a@example.com"])


def test_url_encoded_credentials_log_in(auth_server: SmtpServer, tmp_path: Path) -> None:
    send(context(auth_server.url, tmp_path), to=["a@example.com"])
    assert len(auth_server.messages) == 1


def test_a_refused_login_is_permanent_and_never_shows_the_password(
        auth_server: SmtpServer, tmp_path: Path) -> None:
    wrong = auth_server.url.replace("s3cr", "nope")
    with pytest.raises(PermanentError, match="SMTP 535 .*login refused") as caught:
        send(context(wrong, tmp_path), to=["a@example.com"])
    assert "nope" not in str(caught.value)


@pytest.mark.parametrize("url", [
    f"smtp://mailer:{PASSWORD}@127.0.0.1:{{port}}?starttls=require",
    "smtp://mailer:s3cr%2Ft%40pw@127.0.0.1:{port}",
    "smtp://mailer:s3cr%2Ft%40pw@127.0.0.1:{port}?starttls=maybe",
    "smtp://mailer:s3cr%2Ft%40pw@127.0.0.1:notaport",
    "ftp://mailer:s3cr%2Ft%40pw@127.0.0.1:{port}",
])
def test_the_password_is_never_in_an_error_message(url: str, tmp_path: Path) -> None:
    # Given a URL with a password and a failure before, at or after connecting
    ctx = context(url.format(port=free_port()), tmp_path)
    # When delivery fails
    with pytest.raises((TransientError, PermanentError)) as caught:
        send(ctx, to=["a@example.com"])
    # Then neither the password nor its encoded form appears
    assert "s3cr" not in str(caught.value)


def test_required_starttls_on_a_server_without_it_is_permanent(smtp_server: SmtpServer,
                                                               tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        send(context(smtp_server.url + "?starttls=require", tmp_path), to=["a@example.com"])
    assert smtp_server.messages == []


def test_without_a_url_the_message_goes_to_the_outbox(tmp_path: Path) -> None:
    # Given no SMTP server configured
    # When a message is sent
    result = send(context(None, tmp_path), to=["a@example.com"], subject="Hi", body="Hello")
    # Then it is a parseable .eml in the outbox, and nothing else is there
    path = Path(result["path"])
    assert result["delivered"] == "outbox"
    assert list((tmp_path / "outbox").iterdir()) == [path]
    assert path.suffix == ".eml"
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert (message["To"], message["Subject"]) == ("a@example.com", "Hi")
    assert message["Message-ID"] == result["message_id"]


def test_smtp_urls_have_default_ports_and_decoded_credentials() -> None:
    plain = parse_url("smtp://mail.example.com")
    secure = parse_url("smtps://u%40x:p%2F@mail.example.com")
    assert (plain.port, plain.implicit_tls, plain.username) == (25, False, None)
    assert (secure.port, secure.implicit_tls) == (465, True)
    assert (secure.username, secure.password) == ("u@x", "p/")
    assert parse_url("smtp://h:2525?starttls=require").require_starttls
