"""``python -m reference_server.restart``: restart the reference server that ``reference_server.around`` started.

A deploy of the embedded server, for ``--action``: SIGHUP to ``$REFERENCE_SERVER_PID``, then wait until
it serves again on the same port (its ``$REFERENCE_SERVER_STATS_FILE`` counts one more restart). The stop
half follows the server's ``--on-stop``. Exit 0 once it serves again, 1 when it is not back within
``--timeout`` seconds or is gone, 2 outside ``reference_server.around``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from reference_server.process import PID_VARIABLE, STATS_FILE_VARIABLE, STOP_TIMEOUT_SECONDS, restart_server


def main(argv: Sequence[str] | None = None) -> int:
    """Restart the server named by the environment; one line on the outcome."""
    parser = argparse.ArgumentParser(prog="python -m reference_server.restart", description=__doc__)
    parser.add_argument("--timeout", type=float, default=STOP_TIMEOUT_SECONDS, help="seconds to wait, at most")
    args = parser.parse_args(argv)
    pid, stats_file = os.environ.get(PID_VARIABLE, ""), os.environ.get(STATS_FILE_VARIABLE, "")
    if not pid.isdigit() or not stats_file:
        sys.stderr.write(
            f"reference_server.restart: {PID_VARIABLE} and {STATS_FILE_VARIABLE} are not set: run "
            "under python -m reference_server.around (make headless without HOST)\n"
        )
        return 2
    try:
        stats = restart_server(int(pid), stats_file, args.timeout)
    except (OSError, TimeoutError, ValueError, KeyError) as error:
        sys.stderr.write(f"reference_server.restart: {error}\n")
        return 1
    sys.stdout.write(
        f"reference server (pid {pid}) restarted: {stats['dropped_on_stop']:,} acknowledged logs dropped "
        f"from its queue at stops so far, {stats['stored']:,} stored\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
