"""Shipyard: one coherent MLOps platform. The SDK's module-level helpers live here (see shipyard.client.fluent)."""

__version__ = "0.1.0"
