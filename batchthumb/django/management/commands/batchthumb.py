"""``python manage.py batchthumb <command> [options]``: the ``batchthumb`` CLI on the site's own config.

The options, output and exit statuses are the CLI's (``batchthumb --help``); the config is
derived from the running site (:mod:`batchthumb.django.site`) unless ``--config FILE`` names
one, with ``settings.BATCHTHUMB`` and ``BATCHTHUMB_*`` variables laid over it. Two commands
more: ``config`` (the derived config as commented TOML) and ``config --check FILE``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Backfill, regenerate and purge image renditions in bulk, on a config derived from this site."

    def run_from_argv(self, argv: list[str]) -> None:
        from batchthumb.django.cli import site_main

        site_main(argv[2:], prog_name=f"{os.path.basename(argv[0])} {argv[1]}")

    def print_help(self, prog_name: str, subcommand: str) -> None:
        from batchthumb.django.cli import site_main

        site_main(["--help"], prog_name=f"{os.path.basename(prog_name)} {subcommand}")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("batchthumb", "generate", "--dry-run")``: a status other than 0 raises."""
        from batchthumb.django.cli import site_main

        try:
            site_main(list(args), prog_name="batchthumb")
        except SystemExit as exit:
            if exit.code not in (0, None):
                raise CommandError(
                    f"batchthumb {' '.join(args)}: exit status {exit.code}", returncode=int(exit.code or 1)
                ) from None
