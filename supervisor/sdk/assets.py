"""Assets: the `@asset` decorator, the definition it makes, and the run-time context."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, overload

from supervisor.sdk.errors import DefinitionsError, describe, key_problem

CONTEXT_PARAM = "context"
DEFAULT_GROUP = "default"


class AssetContext:
    """What an asset with a `context` parameter receives when it runs."""

    __slots__ = ("asset_key", "log", "run_id")

    def __init__(self, asset_key: str, run_id: str, log: logging.Logger | None = None) -> None:
        self.asset_key = asset_key
        self.run_id = run_id
        # A default logger lets users build a context by hand when unit-testing an asset.
        self.log = log if log is not None else logging.getLogger(f"supervisor.asset.{asset_key}")

    def __repr__(self) -> str:
        return f"AssetContext(asset_key={self.asset_key!r}, run_id={self.run_id!r})"


class AssetDefinition:
    """A function declared as an asset; calling it calls the function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        group_name: str | None = None,
        description: str | None = None,
    ) -> None:
        if not inspect.isfunction(fn):
            raise DefinitionsError(_not_a_function(fn))
        key = fn.__name__ if name is None else name
        problem = key_problem(key, "asset name")
        if problem is not None:
            where = f" (function {fn.__module__}.{fn.__qualname__})"
            hint = "; pass name=... to @asset" if name is None else ""
            raise DefinitionsError(problem + where + hint)
        if key == CONTEXT_PARAM:
            raise DefinitionsError(
                f"asset name {key!r} is reserved: a parameter named {CONTEXT_PARAM!r} receives "
                "the run's AssetContext; pass another name=... to @asset"
            )
        group = DEFAULT_GROUP if group_name is None else group_name
        problem = key_problem(group, f"asset {key!r}: group_name")
        if problem is not None:
            raise DefinitionsError(problem)
        if description is not None and not isinstance(description, str):
            raise DefinitionsError(
                f"asset {key!r}: description must be a string, got {describe(description)}"
            )
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            # The run worker calls assets synchronously; a coroutine would be stored, not run.
            raise DefinitionsError(f"asset {key!r}: async functions are not supported")
        self._fn = fn
        self._key = key
        self._group = group
        self._explicit_description = description
        self._description = (
            description if description is not None else inspect.cleandoc(fn.__doc__ or "")
        )
        self._params, self._optional = _parameters(key, fn)
        # Look like the function to introspection (inspect.signature, help, pytest).
        self.__wrapped__ = fn
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        self.__doc__ = fn.__doc__

    @property
    def key(self) -> str:
        """The asset's key: the function name unless `name=` was given."""
        return self._key

    @property
    def fn(self) -> Callable[..., Any]:
        """The decorated function."""
        return self._fn

    @property
    def params(self) -> tuple[str, ...]:
        """The function's parameter names, in order."""
        return self._params

    @property
    def optional_params(self) -> frozenset[str]:
        """The parameters that have default values."""
        return self._optional

    @property
    def group(self) -> str:
        """The asset's group name."""
        return self._group

    @property
    def description(self) -> str:
        """The given description, else the cleaned docstring, else ""."""
        return self._description

    def with_group(self, group_name: str) -> AssetDefinition:
        """Return a copy of this asset in another group; this one is unchanged."""
        return AssetDefinition(
            self._fn, name=self._key, group_name=group_name, description=self._explicit_description
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"AssetDefinition(key={self._key!r}, group={self._group!r})"


def _not_a_function(value: Any) -> str:
    message = f"@asset expects a function, got {describe(value)}"
    if isinstance(value, str):
        message += f"; to name an asset, write @asset(name={value!r})"
    elif isinstance(value, AssetDefinition):
        message += " (@asset applied twice?)"
    return message


def _parameters(key: str, fn: Callable[..., Any]) -> tuple[tuple[str, ...], frozenset[str]]:
    names = []
    optional = set()
    for param in inspect.signature(fn).parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise DefinitionsError(
                f"asset {key!r}: parameter '*{param.name}' is not allowed; an asset takes "
                "named parameters only (one per upstream asset or resource)"
            )
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            raise DefinitionsError(
                f"asset {key!r}: parameter '**{param.name}' is not allowed; an asset takes "
                "named parameters only (one per upstream asset or resource)"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            # Upstream values and resources are passed by name.
            raise DefinitionsError(
                f"asset {key!r}: parameter {param.name!r} is positional-only; "
                "an asset's parameters must accept keywords"
            )
        names.append(param.name)
        if param.default is not inspect.Parameter.empty:
            optional.add(param.name)
    return tuple(names), frozenset(optional)


AssetFunction = Callable[..., Any]


@overload
def asset(fn: AssetFunction) -> AssetDefinition: ...


@overload
def asset(
    fn: None = None,
    *,
    name: str | None = None,
    group_name: str | None = None,
    description: str | None = None,
) -> Callable[[AssetFunction], AssetDefinition]: ...


def asset(
    fn: AssetFunction | None = None,
    *,
    name: str | None = None,
    group_name: str | None = None,
    description: str | None = None,
) -> AssetDefinition | Callable[[AssetFunction], AssetDefinition]:
    """Declare a function as an asset: `@asset` or `@asset(name=..., group_name=..., ...)`."""
    if fn is not None:
        return AssetDefinition(fn, name=name, group_name=group_name, description=description)

    def decorate(function: AssetFunction) -> AssetDefinition:
        return AssetDefinition(function, name=name, group_name=group_name, description=description)

    return decorate
