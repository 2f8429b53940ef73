"""The ``linkbay-customers`` command."""

from __future__ import annotations

__all__ = ("main",)


def main() -> None:
    """Entry point of the ``linkbay-customers`` command."""
    from linkbay_customers_cli._app import app

    app()
