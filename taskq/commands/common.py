"""What every command group shares: the deployment (`runtime`) and the options named alike
in each (`--json`, a task id)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from taskq.commands import completion

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

JsonOpt = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")]
IdArg = Annotated[str, typer.Argument(autocompletion=completion.recent_ids,
                                      help="A task id, or a unique prefix of 6 or more.")]


def runtime(start_broker: bool = True) -> Runtime:
    """The deployment; read commands pass start_broker=False: they never start the embedded
    broker (none running means no tasks: exit 7)."""
    from taskq import config  # (imports inside commands: each loads only what it runs)
    from taskq.runtime import Runtime

    return Runtime(config.load(), start_broker)
