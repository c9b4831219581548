"""The thin, typed currying layer over plain, typed implementations.

Each public function is written as a plain typed function, data first and
options keyword-only, and decorated with :func:`curried` (or, for
``map_blocks``, whose kernel comes before the data, :func:`curried_kernel`).

At run time the decorator returns a :class:`toolz.curry` subclass, so the
result composes in ``toolz.pipe``, pickles by reference, tokenizes
deterministically in dask and keeps ``__name__``, ``__doc__``,
``__wrapped__`` and :func:`inspect.signature`. Unlike ``toolz.curry`` it
decides whether to call or to curry by binding the arguments to the
signature *before* the call: a call whose arguments bind is made, and any
``TypeError`` it raises propagates as it is (``toolz.curry`` catches it and
may return a partial instead, so a bug surfaces far from its cause); a call
that only lacks arguments returns a partial; anything else (an unknown
keyword, too many arguments) raises ``TypeError`` at once.

For the type checker the decorator returns a :class:`Curried` protocol whose
overloaded ``__call__`` gives the function's result when the data is passed
and a callable of the data when it is omitted; a function generic over
``Raster``/``Cube`` (``rescale``: ``Raster -> Raster``, ``Cube -> Cube``)
keeps that in both forms (:class:`CurriedSameKind`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

import toolz

if TYPE_CHECKING:
    from pyr.cube import Cube
    from pyr.raster import Raster

__all__ = ["Curried", "CurriedKernelOp", "CurriedSameKind", "SameKindStep", "curried", "curried_kernel"]

P = ParamSpec("P")
D = TypeVar("D")
R = TypeVar("R")
F = TypeVar("F")
D_contra = TypeVar("D_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)


class Curried(Protocol[D_contra, P, R_co]):
    """A curried ``f(data, *args, **options) -> R``: without the data, a function of it."""

    @overload
    def __call__(self, data: D_contra, /, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Callable[[D_contra], R_co]: ...


class SameKindStep(Protocol):
    """A step of a pipeline that maps a ``Raster`` to a ``Raster`` and a ``Cube`` to a ``Cube``."""

    @overload
    def __call__(self, data: Raster, /) -> Raster: ...
    @overload
    def __call__(self, data: Cube, /) -> Cube: ...


class _SameKind(Protocol[P]):
    """The plain function behind :class:`CurriedSameKind`: generic over ``Raster``/``Cube``."""

    @overload
    def __call__(self, data: Raster, /, *args: P.args, **kwargs: P.kwargs) -> Raster: ...
    @overload
    def __call__(self, data: Cube, /, *args: P.args, **kwargs: P.kwargs) -> Cube: ...


class CurriedSameKind(Protocol[P]):
    """A curried ``f(raster_or_cube, **options)`` returning the kind it was given."""

    @overload
    def __call__(self, data: Raster, /, *args: P.args, **kwargs: P.kwargs) -> Raster: ...
    @overload
    def __call__(self, data: Cube, /, *args: P.args, **kwargs: P.kwargs) -> Cube: ...
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> SameKindStep: ...


class _KernelOp(Protocol[F_contra, P]):
    """The plain function behind :class:`CurriedKernelOp`: ``f(kernel, raster_or_cube, ...)``."""

    @overload
    def __call__(self, func: F_contra, data: Raster, /, *args: P.args, **kwargs: P.kwargs) -> Raster: ...
    @overload
    def __call__(self, func: F_contra, data: Cube, /, *args: P.args, **kwargs: P.kwargs) -> Cube: ...


class CurriedKernelOp(Protocol[F_contra, P]):
    """A curried ``f(kernel, raster_or_cube, ...)``: without the data, a function of it."""

    # The overloads overlap only through ``*args`` (the data is given positionally
    # or not at all); the first that matches is the right one.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: F_contra, data: Raster, /, *args: P.args, **kwargs: P.kwargs
    ) -> Raster: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: F_contra, data: Cube, /, *args: P.args, **kwargs: P.kwargs
    ) -> Cube: ...
    @overload
    def __call__(self, func: F_contra, /, *args: P.args, **kwargs: P.kwargs) -> SameKindStep: ...


class _Curried(toolz.curry):  # type: ignore[misc]  # toolz is untyped
    """:class:`toolz.curry` that binds the signature to decide, never catching the call's ``TypeError``."""

    _sigspec: inspect.Signature | None  # set to None by toolz.curry.__init__; a cache, not pickled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sig = self._sigspec
        if sig is None:
            sig = self._sigspec = inspect.signature(self.func)
        all_args = self.args + args
        all_kwargs = {**self.keywords, **kwargs} if self.keywords else kwargs
        try:
            sig.bind(*all_args, **all_kwargs)
        except TypeError:
            try:
                sig.bind_partial(*all_args, **all_kwargs)
            except TypeError as err:  # no further argument can make this call valid
                raise TypeError(f"{self.__name__}(): {err}") from None
            return self.bind(*args, **kwargs)
        return self._partial(*args, **kwargs)

    @toolz.functoolz.instanceproperty  # type: ignore[untyped-decorator]  # as toolz.curry: None on the class
    def __signature__(self) -> inspect.Signature:
        """The plain function's signature; for a partial, what is left to pass (as toolz gives it)."""
        if not self.args and not self.keywords:
            return inspect.signature(self.func)
        sig: inspect.Signature = super().__signature__
        return sig

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        """The plain function (as :func:`functools.wraps` would record it)."""
        func: Callable[..., Any] = self.func
        return func


# A function generic over Raster/Cube also fits the second form, as a worse type: the first wins.
@overload
def curried(func: _SameKind[P]) -> CurriedSameKind[P]: ...  # type: ignore[overload-overlap]
@overload
def curried(func: Callable[Concatenate[D, P], R]) -> Curried[D, P, R]: ...
def curried(func: Callable[..., Any]) -> Any:
    """Curry ``func``, a plain typed function taking the data first and options by keyword.

    Examples
    --------
    >>> @curried
    ... def add(x: int, *, y: int = 1) -> int:
    ...     return x + y
    >>> add(1, y=2), add(y=2)(1)
    (3, 3)
    """
    return _Curried(func)


def curried_kernel(func: _KernelOp[F, P]) -> CurriedKernelOp[F, P]:
    """Curry ``func(kernel, raster_or_cube, *more, **options)`` (``map_blocks``'s shape).

    The same run-time object as :func:`curried`; only the static type differs,
    keeping the kind of the data (``Raster`` or ``Cube``) in the result.
    """
    curry: CurriedKernelOp[F, P] = _Curried(func)
    return curry
