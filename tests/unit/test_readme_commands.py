"""The README names only commands and options that exist: every `taskq …` it shows, in a
code span or a shell block, is checked against the CLI's own command tree (nothing is run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

from taskq.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _invocations() -> list[str]:
    """The text after `taskq` of each invocation the README shows."""
    text = README.read_text()
    prose, shell, fence = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence is None:
            prose.append(line)
        elif fence in ("sh", "bash", "console", ""):
            shell.append(line.split(" #")[0])
    spans = [span.split("|")[0] for span in re.findall(r"`(taskq [^`]+)`", "\n".join(prose))]
    # (a command at the start of a line or after a pipe; not the package's folder)
    commands = r"(?:^|[|;&]\s*|\bbin/)(taskq [^|;&)]+)"
    found = spans + [part for line in shell for part in re.findall(commands, line.strip())]
    return sorted({found_one.partition("taskq ")[2].strip() for found_one in found})


def _words(shown: str) -> list[str]:
    """An invocation's words; the README's placeholders ([optional], …) dropped."""
    plain = re.sub(r"[\[\]…]", " ", shown)
    try:
        return shlex.split(plain)
    except ValueError:  # a quote the README closes on a later line (a JSON example)
        return plain.split()


def _check(words: list[str]) -> list[str]:
    """What in `words` (one invocation) the CLI does not have."""
    command: Any = typer.main.get_command(app)
    context = command.make_context("taskq", [], resilient_parsing=True)
    problems = []
    for word in words:
        if hasattr(command, "get_command") and not word.startswith("-"):  # a group
            sub = command.get_command(context, word)
            if sub is None:
                problems.append(f"no command {word!r}")
                break
            command = sub
            continue
        if word.startswith("-") and word != "-":  # (- alone: stdin)
            name = word.split("=")[0]
            options = {opt for param in command.params for opt in (*param.opts,
                                                                   *param.secondary_opts)}
            if name not in options | {"--help", "-h"}:
                problems.append(f"{command.name} has no option {name}")
    return problems


def test_every_command_and_option_the_readme_shows_exists():
    invocations = _invocations()
    assert len(invocations) > 40  # the README shows many; a broken pattern finds none
    problems = {shown: found for shown in invocations
                if (found := _check(_words(shown)))}
    assert problems == {}
