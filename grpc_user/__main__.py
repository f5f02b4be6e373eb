"""Entry point for ``python -m grpc_user``."""

import sys

from grpc_user.command_line import main

sys.exit(main())
