"""`per_instance_lru_cache`: `functools.lru_cache` for methods, with one cache per instance.

`functools.lru_cache` on a method keeps one cache for the class, keyed by `self` among the arguments: every
instance stays alive as long as the class (the cache holds it), and instances evict each other's entries. This
decorator gives each instance its own bounded LRU cache, stored on the instance and freed with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, cast, overload

__all__ = ["per_instance_lru_cache"]

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")

# The instance attribute holding {descriptor: that instance's cached bound method}.
_CACHES_ATTRIBUTE = "_per_instance_lru_caches"


class _PerInstanceLRUCache(Generic[S, P, R]):
    """Descriptor: `instance.method` is the method bound to `instance`, behind that instance's own LRU cache."""

    def __init__(self, method: Callable[Concatenate[S, P], R], maxsize: int | None) -> None:
        self._method = method
        self._maxsize = maxsize
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, instance: S, owner: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(self, instance: S | None, owner: type[Any] | None = None) -> Self | Callable[P, R]:
        if instance is None:
            return self
        caches: dict[Hashable, Callable[P, R]] = instance.__dict__.setdefault(_CACHES_ATTRIBUTE, {})
        cached = caches.get(self)
        if cached is None:
            # Keyed by the descriptor, so a cached override and the cached method it calls through `super()` do not mix.
            bound = functools.partial(self._method, instance)
            cached = cast(Callable[P, R], functools.update_wrapper(functools.lru_cache(maxsize=self._maxsize)(bound), self._method))
            caches[self] = cached
        return cached


def per_instance_lru_cache(
    maxsize: int | None = 128,
) -> Callable[[Callable[Concatenate[S, P], R]], _PerInstanceLRUCache[S, P, R]]:
    """Like `functools.lru_cache(maxsize)` on a method, but each instance has its own cache of `maxsize` entries."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> _PerInstanceLRUCache[S, P, R]:
        return _PerInstanceLRUCache(method, maxsize)

    return decorate
