"""Entry point for `python -m taskq`."""

from taskq.cli import main

main()
