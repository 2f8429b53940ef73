"""``python -m linkbay_customers_cli``: the same as the ``linkbay-customers`` command."""

from __future__ import annotations

from linkbay_customers_cli import main

main()
