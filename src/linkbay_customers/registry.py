"""The registry of storage URL schemes: which storage a ``scheme://...`` URL opens.

The core knows no storage adapter. A distribution declares the schemes its
storage opens in the ``linkbay_customers.storages`` entry-point group, each
naming a factory ``factory(url, **options) -> Storage``, as SQLAlchemy dialects
and fsspec protocols do::

    [project.entry-points."linkbay_customers.storages"]
    myscheme = "my_package:open_my_storage"

A host that ships no distribution calls ``register_storage`` at run time; what it
registers takes precedence over an entry point of the same name. A URL's scheme is
the part before ``://``, and before ``+`` when a driver is named
(``sqlite+aiosqlite://`` is the ``sqlite`` scheme). A factory is imported only when
a URL asks for its scheme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from linkbay_customers.ports import Storage

__all__ = (
    "ENTRY_POINT_GROUP",
    "RegisteredStorage",
    "StorageFactory",
    "open_storage",
    "register_storage",
    "registered_storage",
    "registered_storages",
    "storage_schemes",
    "unregister_storage",
    "url_scheme",
)

ENTRY_POINT_GROUP = "linkbay_customers.storages"
"""The entry-point group a distribution declares its storage URL schemes in."""

_SCHEME = re.compile(r"[a-z][a-z0-9.-]*")


class StorageFactory(Protocol):
    """Opens a storage on a URL of the scheme it is registered for."""

    def __call__(self, url: str, /, **options: Any) -> Storage:
        """The storage the URL names, configured with the options."""
        ...


_runtime: dict[str, StorageFactory] = {}


@dataclass(frozen=True, slots=True)
class RegisteredStorage:
    """Where a scheme's storage comes from, told without importing it.

    Attributes:
        scheme: The URL scheme (``sqlite``).
        module: The module the factory lives in (``linkbay_customers_sqlalchemy``).
        target: The factory as ``module:qualified.name``.
        distribution: The distribution that declared it; None when registered at run time.
    """

    scheme: str
    module: str
    target: str
    distribution: str | None


def url_scheme(url: str) -> str:
    """The registry's scheme for a URL: before ``://`` and any ``+driver``, lowercased.

    Raises:
        ValueError: the text has no ``scheme://``.
    """
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        raise ValueError(f"{url!r} is not a storage URL (scheme://...)")
    return scheme.split("+", 1)[0].lower()


def register_storage(scheme: str, factory: StorageFactory) -> None:
    """Make ``scheme://...`` URLs open the factory's storage, in this process.

    Takes precedence over an entry point declaring the same scheme, and replaces
    an earlier ``register_storage`` of it.

    Args:
        scheme: Lowercase, a letter first, then letters, digits, ``.`` or ``-``
            (no ``+``: a driver after it belongs to the URL, not the scheme).
        factory: ``factory(url, **options) -> Storage``.

    Raises:
        ValueError: the scheme is malformed.
    """
    if not _SCHEME.fullmatch(scheme):
        raise ValueError(
            f"{scheme!r} is not a storage scheme: lowercase letters, digits, '.' or '-', "
            "a letter first"
        )
    _runtime[scheme] = factory


def unregister_storage(scheme: str) -> None:
    """Forget a ``register_storage``; an entry point of that scheme is seen again.

    Raises:
        KeyError: the scheme was not registered at run time.
    """
    del _runtime[scheme]


def _declared() -> dict[str, EntryPoint]:
    # Read on every call: sys.path may have gained a distribution since (a plugin
    # installed at run time, a test's temporary one), and URLs are resolved rarely.
    declared: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        declared.setdefault(entry.name.lower(), entry)  # the first on sys.path wins
    return declared


def storage_schemes() -> tuple[str, ...]:
    """Every registered scheme, declared or registered at run time, sorted."""
    return tuple(sorted(_declared().keys() | _runtime.keys()))


def _runtime_registration(scheme: str, factory: StorageFactory) -> RegisteredStorage:
    module = getattr(factory, "__module__", None) or type(factory).__module__
    name = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return RegisteredStorage(scheme, module, f"{module}:{name}", None)


def _declared_registration(entry: EntryPoint) -> RegisteredStorage:
    distribution = entry.dist.name if entry.dist is not None else None
    return RegisteredStorage(entry.name.lower(), entry.module, entry.value, distribution)


def registered_storages() -> tuple[RegisteredStorage, ...]:
    """Where every scheme's storage comes from, without importing any, by scheme."""
    found = {scheme: _declared_registration(entry) for scheme, entry in _declared().items()}
    found |= {scheme: _runtime_registration(scheme, f) for scheme, f in _runtime.items()}
    return tuple(found[scheme] for scheme in sorted(found))


def registered_storage(scheme: str) -> RegisteredStorage | None:
    """Where a scheme's storage comes from, without importing it; None if unregistered."""
    scheme = scheme.lower()
    factory = _runtime.get(scheme)
    if factory is not None:
        return _runtime_registration(scheme, factory)
    entry = _declared().get(scheme)
    return None if entry is None else _declared_registration(entry)


def _unknown(url: str, scheme: str) -> ValueError:
    schemes = storage_schemes()
    known = ", ".join(f"{name}://" for name in schemes) if schemes else "none"
    hint = (
        ""
        if schemes
        else " (the library's own schemes come from its installed metadata: "
        "pip install linkbay-customers, or pip install -e . in a checkout)"
    )
    given = url.split("://", 1)[0]
    spelled = f" (as {given}://)" if given != scheme else ""
    return ValueError(
        f"no storage is registered for {scheme}://{spelled}; "
        f"registered: {known}{hint}. A storage registers its scheme in the "
        f"{ENTRY_POINT_GROUP!r} entry-point group or with register_storage()"
    )


def _factory(url: str) -> StorageFactory:
    scheme = url_scheme(url)
    factory = _runtime.get(scheme)
    if factory is not None:
        return factory
    entry = _declared().get(scheme)
    if entry is None:
        raise _unknown(url, scheme)
    try:
        loaded: StorageFactory = entry.load()
    except ImportError as exc:
        # The adapters' own ImportErrors name the extra to install.
        raise ImportError(
            f"the {scheme}:// storage ({entry.value}) cannot be loaded: {exc}"
        ) from exc
    return loaded


def open_storage(url: str, **options: Any) -> Storage:
    """Open the storage a URL names, importing its adapter only now.

    Args:
        url: ``scheme://...``; the shipped schemes are ``memory://``,
            ``sqlite+aiosqlite:///path.db`` and ``postgresql+asyncpg://...``.
        **options: Passed on to the scheme's factory.

    Raises:
        ValueError: the URL is malformed or names no registered scheme (the
            message lists the registered ones).
        ImportError: the scheme's adapter needs an extra that is not installed
            (the message names it).
    """
    return _factory(url)(url, **options)
