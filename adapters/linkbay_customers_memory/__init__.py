"""In-memory storage adapter: a real unit of work over dictionaries, for tests and prototypes."""

from __future__ import annotations

from linkbay_customers_memory._storage import InMemoryStorage, InMemoryUnitOfWork

__all__ = ("InMemoryStorage", "InMemoryUnitOfWork")
