"""Name -> object registries for models, data sets and metrics.

Everything that a flag or a config names (``--model=lrlivae``, ``--dataset=digits``) is looked up
here, so no module needs an if/elif chain over names. An unknown name raises a ``KeyError`` that
lists the known ones.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, List, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A case-insensitive mapping from names to registered objects.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("vae")
        ... class VAE: ...
        >>> MODELS.get("VAE") is VAE
        True
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = name.lower()

        def decorator(obj: T) -> T:
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        key = str(name).lower()
        if key not in self._entries:
            raise KeyError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}"
            )
        return self._entries[key]

    def names(self) -> List[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return str(name).lower() in self._entries


MODELS: Registry = Registry("model")
DATASETS: Registry = Registry("dataset")
METRICS: Registry = Registry("metric")
BENCHMARKS: Registry = Registry("benchmark suite")
