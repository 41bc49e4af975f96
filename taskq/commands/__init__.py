"""The CLI's command groups, beside the core commands in taskq/cli.py."""
