"""Definitions: one code location's assets, resources and schedules, validated as a whole."""

from __future__ import annotations

import difflib
import heapq
import types
from typing import Any, Iterable, Mapping

from supervisor.sdk.assets import CONTEXT_PARAM, AssetDefinition
from supervisor.sdk.errors import DefinitionsError, describe, key_problem
from supervisor.sdk.schedules import ScheduleDefinition

__all__ = ["Definitions", "DefinitionsError", "UnknownKeyError", "load_assets_from_modules"]


class UnknownKeyError(DefinitionsError, KeyError):
    """An asset or schedule name that the Definitions do not hold."""

    def __str__(self) -> str:
        # KeyError would show the message in quotes.
        return str(self.args[0]) if self.args else ""


class Definitions:
    """A code location's assets, resources and schedules; the constructor validates them."""

    def __init__(
        self,
        assets: Iterable[AssetDefinition] | None = None,
        resources: Mapping[str, Any] | None = None,
        schedules: Iterable[ScheduleDefinition] | None = None,
    ) -> None:
        problems: list[str] = []
        self._assets = _collect(assets, AssetDefinition, "assets", "made with @asset", problems)
        self._schedules = _collect(schedules, ScheduleDefinition, "schedules", "", problems)
        self._resources = _collect_resources(resources, problems)
        self._by_key: dict[str, AssetDefinition] = {}
        for asset_def in self._assets:
            first = self._by_key.setdefault(asset_def.key, asset_def)
            if first is not asset_def:
                problems.append(_duplicate(first, asset_def))
        self._deps: dict[str, tuple[str, ...]] = {}
        self._uses: dict[str, tuple[str, ...]] = {}
        for key, asset_def in self._by_key.items():
            if key in self._resources:
                problems.append(
                    f"asset {key!r} has the same name as a resource: a parameter {key!r} would "
                    "be ambiguous; rename one of them"
                )
            self._bind(asset_def, problems)
        self._index = {key: i for i, key in enumerate(self._by_key)}
        self._order, cycles = self._sort()
        problems.extend("dependency cycle: " + " -> ".join(cycle) + _CYCLE_NOTE for cycle in cycles)
        self._check_schedules(problems)
        if problems:
            if len(problems) == 1:
                raise DefinitionsError(problems[0], problems)
            listing = "\n".join("- " + problem for problem in problems)
            raise DefinitionsError(f"{len(problems)} problems in Definitions:\n{listing}", problems)

    @property
    def assets(self) -> tuple[AssetDefinition, ...]:
        """The assets, in definition order, each object once."""
        return self._assets

    @property
    def resources(self) -> dict[str, Any]:
        """A copy of the resources, by key."""
        return dict(self._resources)

    @property
    def schedules(self) -> tuple[ScheduleDefinition, ...]:
        """The schedules, in definition order."""
        return self._schedules

    @property
    def asset_keys(self) -> tuple[str, ...]:
        """Every asset key, in definition order."""
        return tuple(self._by_key)

    def get_asset(self, key: str) -> AssetDefinition:
        """Return the asset called `key`; UnknownKeyError (a KeyError) if there is none."""
        self._check_known(key)
        return self._by_key[key]

    def deps_of(self, key: str) -> tuple[str, ...]:
        """The asset keys that `key` takes as parameters, in parameter order."""
        self._check_known(key)
        return self._deps[key]

    def resources_of(self, key: str) -> tuple[str, ...]:
        """The resource keys that `key` takes as parameters, in parameter order."""
        self._check_known(key)
        return self._uses[key]

    def schedule_targets(self, schedule: ScheduleDefinition | str) -> tuple[str, ...]:
        """The asset keys a schedule (object or name) materializes, with "*" resolved."""
        name = schedule if isinstance(schedule, str) else schedule.name
        found = [s for s in self._schedules if s is schedule or s.name == name]
        if not found:
            known = _names(s.name for s in self._schedules)
            raise UnknownKeyError(f"unknown schedule {name!r} (schedules: {known})")
        return self.asset_keys if found[0].target_all else found[0].targets

    def upstream_closure(self, keys: str | Iterable[str]) -> tuple[str, ...]:
        """The given keys and everything upstream of them, each after all its deps."""
        wanted = set()
        stack = self._known_list(keys)
        while stack:
            key = stack.pop()
            if key not in wanted:
                wanted.add(key)
                stack.extend(self._deps[key])
        return tuple(key for key in self._order if key in wanted)

    def toposort(self, keys: str | Iterable[str] | None = None) -> tuple[str, ...]:
        """The given keys (default: all) in dependency order, ties in definition order."""
        if keys is None:
            return self._order
        wanted = set(self._known_list(keys))
        return tuple(key for key in self._order if key in wanted)

    def __repr__(self) -> str:
        return (
            f"Definitions(assets={list(self._by_key)!r}, resources={list(self._resources)!r}, "
            f"schedules={[s.name for s in self._schedules]!r})"
        )

    def _bind(self, asset_def: AssetDefinition, problems: list[str]) -> None:
        # Resolve each parameter to an upstream asset or a resource; the rest must be optional.
        deps: list[str] = []
        uses: list[str] = []
        for param in asset_def.params:
            if param == CONTEXT_PARAM:
                continue
            if param in self._by_key:
                deps.append(param)
            elif param in self._resources:
                uses.append(param)
            elif param not in asset_def.optional_params:
                problems.append(self._unbound(asset_def.key, param))
        self._deps[asset_def.key] = tuple(deps)
        self._uses[asset_def.key] = tuple(uses)

    def _unbound(self, key: str, param: str) -> str:
        message = (
            f"asset {key!r}: parameter {param!r} is neither an asset nor a resource "
            f"(assets: {_names(self._by_key)}; resources: {_names(self._resources)})"
        )
        close = difflib.get_close_matches(param, [*self._by_key, *self._resources], n=1)
        return message + (f"; did you mean {close[0]!r}?" if close else "")

    def _sort(self) -> tuple[tuple[str, ...], list[list[str]]]:
        # Kahn's algorithm with a heap on definition index: deterministic, earliest first.
        waiting = {key: len(deps) for key, deps in self._deps.items()}
        users: dict[str, list[str]] = {key: [] for key in self._deps}
        for key, deps in self._deps.items():
            for dep in deps:
                users[dep].append(key)
        ready = [self._index[key] for key, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        keys = list(self._by_key)
        order: list[str] = []
        while ready:
            key = keys[heapq.heappop(ready)]
            order.append(key)
            for user in users[key]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, self._index[user])
        left = [key for key in keys if key not in set(order)]
        return tuple(order), self._cycles(left)

    def _cycles(self, left: list[str]) -> list[list[str]]:
        # Every asset Kahn left behind has a dep also left behind, so walking
        # deps from any of them must come back to an asset already seen.
        remaining = set(left)
        cycles: list[list[str]] = []
        seen_sets: list[set] = []
        for start in left:
            path = [start]
            while True:
                nxt = next(dep for dep in self._deps[path[-1]] if dep in remaining)
                if nxt in path:
                    cycle = path[path.index(nxt) :]
                    break
                path.append(nxt)
            if set(cycle) not in seen_sets:
                seen_sets.append(set(cycle))
                first = min(range(len(cycle)), key=lambda i: self._index[cycle[i]])
                cycle = cycle[first:] + cycle[:first]
                cycles.append([*cycle, cycle[0]])
        return cycles

    def _check_schedules(self, problems: list[str]) -> None:
        names: dict[str, ScheduleDefinition] = {}
        for schedule in self._schedules:
            if schedule.name in names:
                problems.append(
                    f"duplicate schedule name {schedule.name!r} (cron "
                    f"{names[schedule.name].cron_schedule!r} and {schedule.cron_schedule!r})"
                )
            names.setdefault(schedule.name, schedule)
            for key in schedule.targets:
                if key not in self._by_key:
                    problems.append(
                        f"schedule {schedule.name!r} targets unknown asset {key!r} "
                        f"(assets: {_names(self._by_key)})"
                    )

    def _check_known(self, key: Any) -> None:
        if not isinstance(key, str) or key not in self._by_key:
            raise UnknownKeyError(f"unknown asset {key!r} (assets: {_names(self._by_key)})")

    def _known_list(self, keys: str | Iterable[str]) -> list[str]:
        # A lone string is one key, not a sequence of one-letter keys.
        result = [keys] if isinstance(keys, str) else list(keys)
        for key in result:
            self._check_known(key)
        return result


_CYCLE_NOTE = " (each asset takes the next one as a parameter)"


def _names(keys: Iterable[str], limit: int = 20) -> str:
    names = list(keys)
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _where(asset_def: AssetDefinition) -> str:
    return f"{asset_def.fn.__module__}.{asset_def.fn.__qualname__}"


def _duplicate(first: AssetDefinition, second: AssetDefinition) -> str:
    one, two = _where(first), _where(second)
    if one == two:
        # One function made into two assets, e.g. loaded once plainly and once with a group.
        one += f" (group {first.group!r})"
        two += f" (group {second.group!r})"
    return f"duplicate asset key {first.key!r}: defined by {one} and by {two}"


def _collect(items: Any, kind: type, what: str, hint: str, problems: list[str]) -> tuple[Any, ...]:
    # Keep each object once (by identity), in order; report everything of the wrong type.
    if items is None:
        return ()
    if isinstance(items, (str, bytes, Mapping, kind)) or not hasattr(items, "__iter__"):
        problems.append(f"{what} must be a list of {kind.__name__}, got {describe(items)}")
        return ()
    kept: list[Any] = []
    seen = set()
    for position, item in enumerate(items):
        if not isinstance(item, kind):
            extra = f" ({hint})" if hint else ""
            if callable(item) and kind is AssetDefinition:
                extra += "; did you forget @asset?"
            problems.append(
                f"{what}[{position}]: expected a {kind.__name__}{extra}, got {describe(item)}"
            )
        elif id(item) not in seen:
            seen.add(id(item))
            kept.append(item)
    return tuple(kept)


def _collect_resources(resources: Any, problems: list[str]) -> dict[str, Any]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        problems.append(f"resources must be a dict of key -> object, got {describe(resources)}")
        return {}
    kept: dict[str, Any] = {}
    for key, value in resources.items():
        problem = key_problem(key, "resource key")
        if problem is None and key == CONTEXT_PARAM:
            problem = (
                f"resource key {key!r} is reserved: a parameter named {key!r} receives the "
                "run's AssetContext"
            )
        if problem is None:
            kept[key] = value
        else:
            problems.append(problem)
    return kept


def load_assets_from_modules(
    modules: types.ModuleType | Iterable[types.ModuleType], group_name: str | None = None
) -> list[AssetDefinition]:
    """Every AssetDefinition among the modules' attributes; with `group_name`, regrouped copies."""
    if isinstance(modules, types.ModuleType):
        modules = [modules]
    found: list[AssetDefinition] = []
    seen = set()
    for position, module in enumerate(modules):
        if not isinstance(module, types.ModuleType):
            raise DefinitionsError(
                f"load_assets_from_modules: modules[{position}] is not a module, "
                f"got {describe(module)}"
            )
        for value in list(vars(module).values()):
            if isinstance(value, AssetDefinition) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    if group_name is None:
        return found
    return [asset_def.with_group(group_name) for asset_def in found]
