"""Entry point for ``python -m grpc_user``."""

import sys

from grpc_user.cli import main

sys.exit(main())
