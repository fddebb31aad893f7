"""The SDK: ``Client`` (embedded or remote) and the module-level helpers of ``fluent``."""

from shipyard.client.client import Client

__all__ = ["Client"]
