"""The ``shipyard`` command line: a thin typer + rich adapter over the SDK ``Client`` (entry point: ``main``)."""
