"""The embedded default target: a Python LogService with the real service's semantics.

python -m reference_server --port 50051 --queue-size 1000 --flush-batch 100 --flush-period 5
"""

from reference_server.server import ReferenceServer
from reference_server.settings import ServerSettings, SettingsError
from reference_server.stats import ServerStats

__all__ = ["SettingsError", "ReferenceServer", "ServerSettings", "ServerStats"]
