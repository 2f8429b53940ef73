"""Where the audit trail's HMAC key comes from.

In order: the ``LINKBAY_AUDIT_KEY`` environment variable (the key itself, at least
32 characters), the file ``LINKBAY_AUDIT_KEY_FILE`` names, or a key file the
storage proposes (the embedded SQLite default keeps one beside its database,
created on first use, readable by its owner only). A storage with none of these
refuses to write the trail: see each storage's documentation.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from linkbay_customers.domain import MIN_AUDIT_KEY_BYTES, AuditChain, LinkbayError

__all__ = (
    "AUDIT_KEY_FILE_VARIABLE",
    "AUDIT_KEY_VARIABLE",
    "AuditKeyMissing",
    "audit_chain_from",
    "new_audit_key",
)

AUDIT_KEY_VARIABLE = "LINKBAY_AUDIT_KEY"
AUDIT_KEY_FILE_VARIABLE = "LINKBAY_AUDIT_KEY_FILE"


class AuditKeyMissing(LinkbayError):
    """No usable audit key is configured where one is required."""

    code = "audit_key_missing"


def new_audit_key() -> str:
    """A new random key (64 hexadecimal characters: 256 bits)."""
    return secrets.token_hex(MIN_AUDIT_KEY_BYTES)


def _read(path: Path, origin: str) -> AuditChain:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise AuditKeyMissing(f"cannot read the audit key file {path} ({origin}): {exc}") from exc
    try:
        return AuditChain(key)
    except ValueError as exc:
        raise AuditKeyMissing(f"{path} ({origin}): {exc}") from None


def _create(path: Path) -> None:
    # O_EXCL: two processes starting at once agree on whichever key was written first.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as file:
        file.write(new_audit_key() + "\n")


def audit_chain_from(
    key: bytes | str | AuditChain | None = None,
    *,
    default_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AuditChain | None:
    """The audit chain for a storage.

    Args:
        key: A key given in code (bytes or text of at least 32 bytes), or a chain;
            it wins over the environment.
        default_file: A key file to use, and create if missing, when neither the
            code nor the environment gives a key.
        environ: The environment to read (``os.environ`` by default).

    Returns:
        The chain, or None when no key is given anywhere and there is no default file.

    Raises:
        AuditKeyMissing: a configured key is too short, or its file unreadable.
    """
    if isinstance(key, AuditChain):
        return key
    if key is not None:
        try:
            return AuditChain(key.encode() if isinstance(key, str) else key)
        except ValueError as exc:
            raise AuditKeyMissing(str(exc)) from None
    env = os.environ if environ is None else environ
    value = env.get(AUDIT_KEY_VARIABLE)
    if value:
        try:
            return AuditChain(value.encode())
        except ValueError as exc:
            raise AuditKeyMissing(f"{AUDIT_KEY_VARIABLE}: {exc}") from None
    named = env.get(AUDIT_KEY_FILE_VARIABLE)
    if named:
        return _read(Path(named), AUDIT_KEY_FILE_VARIABLE)
    if default_file is None:
        return None
    _create(default_file)
    return _read(default_file, "the storage's key file")
