"""Package attributes imported on first use (PEP 562 module `__getattr__`), so importing a package stays light."""

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], attributes: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: each name of `attributes` is read from the submodule it maps to
    when first used (then kept in `namespace`, the package's `globals()`), and each of `submodules` is imported
    when first used."""
    submodules = tuple(submodules)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        if name in attributes:
            value = getattr(importlib.import_module(f".{attributes[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *attributes, *submodules})

    return __getattr__, __dir__
