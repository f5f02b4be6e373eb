"""``python -m reference_server.around [server options] -- COMMAND ...``

Starts the reference server on a free loopback port, runs COMMAND with ``LOCUST_HOST`` pointing at
it, stops the server gracefully afterwards and exits with COMMAND's exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from reference_server.process import start_server_process


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command around a fresh reference server."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        sys.stderr.write("usage: python -m reference_server.around [server options] -- COMMAND ...\n")
        return 2
    split = args.index("--")
    server_args, command = args[:split], args[split + 1 :]
    try:
        server = start_server_process(*server_args)
    except RuntimeError as error:
        sys.stderr.write(f"reference_server.around: {error}\n")
        return 2
    host = f"grpc://{server.target}"
    print(f"reference server listening on {host} (LOCUST_HOST)", flush=True)
    try:
        return subprocess.call(command, env={**os.environ, "LOCUST_HOST": host})
    except KeyboardInterrupt:
        return 130
    finally:
        stats = server.stop()
        print(f"reference server stopped: acked {stats['acked']}, stored {stats['stored']}, "
              f"dropped {stats['dropped']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
