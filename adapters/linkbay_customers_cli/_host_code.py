"""The host's own models and schemas, named on the command line as ``module:attribute``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from linkbay_customers.schemas import CustomerCreate
from linkbay_customers_cli._errors import CommandError

__all__ = ("load_attribute", "load_create_schema", "load_models")


def load_attribute(spec: str, *, option: str) -> Any:
    """The object ``module:attribute`` names, importing the module from the working
    directory first (as ``uvicorn main:app`` does).

    Raises:
        CommandError: the text is not ``module:attribute``, the module cannot be
            imported, or it has no such attribute (exit code 2).
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            f"{option} {spec!r} is not module:attribute (such as shop_models:models)",
            exit_code=2,
        )
    working_directory = str(Path.cwd())
    if working_directory not in sys.path:
        sys.path.insert(0, working_directory)
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandError(
            f"{option} {spec!r}: cannot import {module_name}: {error}", exit_code=2
        ) from error
    except Exception as error:  # the host's module failed while it ran
        raise CommandError(
            f"{option} {spec!r}: importing {module_name} failed: {type(error).__name__}: {error}",
            exit_code=2,
        ) from error
    for name in attribute.split("."):
        if not hasattr(found, name):
            raise CommandError(
                f"{option} {spec!r}: {module_name} has no attribute {attribute}", exit_code=2
            )
        found = getattr(found, name)
    return found


def load_models(spec: str | None) -> Any:
    """The ``ModelSet`` ``--models`` names (None without it).

    Raises:
        CommandError: see ``load_attribute``; or the object is not a ``ModelSet``.
    """
    if spec is None:
        return None
    from linkbay_customers_sqlalchemy import ModelSet

    models = load_attribute(spec, option="--models")
    if not isinstance(models, ModelSet):
        raise CommandError(
            f"--models {spec!r} is a {type(models).__name__}, not a ModelSet"
            " (linkbay_customers_sqlalchemy.build_models makes one)",
            exit_code=2,
        )
    return models


def load_create_schema(spec: str | None) -> type[CustomerCreate]:
    """The ``CustomerCreate`` subclass ``--schema`` names (``CustomerCreate`` without it).

    Raises:
        CommandError: see ``load_attribute``; or the object is not such a class.
    """
    if spec is None:
        return CustomerCreate
    schema = load_attribute(spec, option="--schema")
    if not (isinstance(schema, type) and issubclass(schema, CustomerCreate)):
        raise CommandError(
            f"--schema {spec!r} is not a subclass of linkbay_customers.schemas.CustomerCreate",
            exit_code=2,
        )
    return schema
