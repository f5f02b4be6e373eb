"""``python -m grpc_user.locust.settings [OPTIONS]``: Locust's ``--help`` with the suite's options in their groups
(what ``locust --help`` prints in a venv made by ``make venv``, whose ``grpc_user_locust_help.pth`` imports the plugin
before Locust prints its help: locustio/locust#2917), or, given options, their verdict as ``locust`` would give it:
the settings, or the one line and exit code 2."""

from __future__ import annotations

import sys

from grpc_user.locust.settings.arguments import locust_parser, settings_from_arguments
from grpc_user.locust.settings.values import OptionError


def main(argv: list[str] | None = None) -> int:
    """Print the help (no options, or ``-h``/``--help``) or check the options; 0, or 2 for a bad option."""
    args = sys.argv[1:] if argv is None else argv
    if not args or "-h" in args or "--help" in args:
        locust_parser(add_help=True).print_help()
        return 0
    try:
        settings = settings_from_arguments(args)
    except OptionError as error:
        sys.stderr.write(f"locust: error: {error}\n")
        return 2
    sys.stdout.write(f"{settings.public()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
