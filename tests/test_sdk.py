"""Unit tests for the SDK (supervisor.sdk): assets, schedules, Definitions, module loading."""

from __future__ import annotations

import logging
import os
import subprocess
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor import (
    AssetContext,
    AssetDefinition,
    Definitions,
    DefinitionsError,
    ScheduleDefinition,
    asset,
    load_assets_from_modules,
)
from supervisor.sdk import UnknownKeyError, validate_cron

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON38 = os.path.expanduser("~/.pyenv/versions/3.8.18/bin/python")


@asset
def raw():
    """Load the raw rows.

    Second paragraph.
    """
    return [3, 1, 2]


@asset(name="cleaned", group_name="prep", description="Sorted rows.")
def clean_rows(raw, db, context, limit=10):
    context.log.info("cleaning")
    return sorted(raw)[:limit]


# --- assets -------------------------------------------------------------------------------


def test_bare_decorator_builds_definition_from_function() -> None:
    assert isinstance(raw, AssetDefinition)
    assert raw.key == "raw"
    assert raw.group == "default"
    assert raw.params == ()
    assert raw.optional_params == frozenset()
    assert raw.description == "Load the raw rows.\n\nSecond paragraph."
    assert raw.fn() == [3, 1, 2]
    assert "raw" in repr(raw)


def test_decorator_with_arguments() -> None:
    assert clean_rows.key == "cleaned"
    assert clean_rows.group == "prep"
    assert clean_rows.description == "Sorted rows."
    assert clean_rows.params == ("raw", "db", "context", "limit")
    assert clean_rows.optional_params == frozenset({"limit"})
    assert clean_rows.__name__ == "clean_rows"


def test_empty_parentheses_and_no_docstring() -> None:
    @asset()
    def plain(x=1):
        return x

    assert plain.key == "plain"
    assert plain.description == ""


def test_calling_the_asset_calls_the_function_with_a_context() -> None:
    logger = logging.getLogger("test_sdk")
    context = AssetContext("cleaned", "run-1", logger)
    assert context.asset_key == "cleaned"
    assert context.run_id == "run-1"
    assert context.log is logger
    assert clean_rows([5, 4, 9], db=None, context=context, limit=2) == [4, 5]
    assert raw() == [3, 1, 2]


def test_context_without_logger_gets_a_named_one() -> None:
    assert AssetContext("a", "r").log.name == "supervisor.asset.a"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: asset(42), "@asset expects a function, got int 42"),
        (lambda: asset("x"), "write @asset(name='x')"),
        (lambda: asset(asset(lambda: 1, name="ok")), "@asset applied twice"),
        (lambda: asset(name="9lives")(lambda: 1), "asset name '9lives' is not a valid key"),
        (lambda: asset(name="a-b")(lambda: 1), "letters, digits and underscores"),
        (lambda: asset(lambda: 1), "'<lambda>' is not a valid key"),
        (lambda: asset(name="context")(lambda: 1), "asset name 'context' is reserved"),
        (lambda: asset(name="g", group_name="bad group")(lambda: 1), "asset 'g': group_name"),
        (lambda: asset(name="d", description=3)(lambda: 1), "asset 'd': description must"),
    ],
)
def test_decoration_errors(make, expected: str) -> None:
    with pytest.raises(DefinitionsError) as info:
        make()
    assert expected in str(info.value)


def test_star_args_and_kwargs_refused_naming_asset_and_parameter() -> None:
    with pytest.raises(DefinitionsError, match=r"asset 'spread': parameter '\*rest'"):

        @asset
        def spread(*rest):
            return rest

    with pytest.raises(DefinitionsError, match=r"asset 'extra': parameter '\*\*options'"):

        @asset
        def extra(a, **options):
            return a


def test_async_asset_refused() -> None:
    async def later():
        return 1

    with pytest.raises(DefinitionsError, match="asset 'later': async functions"):
        asset(later)


def test_with_group_copies_and_leaves_original() -> None:
    copy = clean_rows.with_group("other")
    assert copy is not clean_rows
    assert (copy.key, copy.group, copy.description) == ("cleaned", "other", "Sorted rows.")
    assert clean_rows.group == "prep"


# --- cron ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "0 3 * * mon-fri",
        "*/15 0-23/2 1,15,31 JAN-Mar,dec 0-7",
        "  5 4 * * sun  ",
        "0 0 1 1 7",
        "5/10 * * * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@Daily",
    ],
)
def test_valid_cron(expr: str) -> None:
    validate_cron(expr)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", "expected 5 fields (minute hour day-of-month month day-of-week)"),
        ("* * * *", "got 4 fields"),
        ("* * * * * *", "got 6 fields"),
        ("@every5m", "unknown alias '@every5m' (allowed: @hourly, @daily"),
        ("60 * * * *", "minute field '60': 60 is out of range (allowed: 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range (allowed: 0-23"),
        ("* * 0 * *", "day-of-month field '0': 0 is out of range (allowed: 1-31"),
        ("* * * 13 *", "month field '13': 13 is out of range (allowed: 1-12 or jan-dec"),
        ("* * * * 8", "day-of-week field '8': 8 is out of range (allowed: 0-7 or sun-sat"),
        ("* * * * funday", "day-of-week field 'funday': 'funday' is not a number or a name"),
        ("* * * jan-foo *", "'foo' is not a number or a name"),
        ("mon * * * *", "minute field 'mon': 'mon' is not a number"),
        ("5-1 * * * *", "range start 5 is after its end 1"),
        ("*/0 * * * *", "step '0' must be a whole number >= 1"),
        ("*/x * * * *", "step 'x' must be a whole number >= 1"),
        ("1,,2 * * * *", "minute field '1,,2': empty list element"),
        ("1- * * * *", "minute field '1-': expected *, N or A-B"),
        ("-1 * * * *", "expected *, N or A-B"),
        ("\u0663 * * * *", "is not a number"),
        (5, "must be a string, got int"),
    ],
)
def test_invalid_cron(expr: str, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_cron(expr)
    assert expected in str(info.value)


_RANGES = [("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12)]
_RANGES.append(("day-of-week", 0, 7))


@st.composite
def _field(draw, low: int, high: int) -> str:
    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "number", "range"]))
        if kind == "star":
            item = "*"
        elif kind == "number":
            item = str(draw(st.integers(low, high)))
        else:
            start = draw(st.integers(low, high))
            item = f"{start}-{draw(st.integers(start, high))}"
        if draw(st.booleans()):
            item += f"/{draw(st.integers(1, 100))}"
        items.append(item)
    return ",".join(items)


@given(st.tuples(*(_field(low, high) for _, low, high in _RANGES)))
def test_generated_valid_cron_is_accepted(fields: tuple[str, ...]) -> None:
    validate_cron(" ".join(fields))


@given(st.integers(0, 4), st.data())
def test_out_of_range_number_is_refused_naming_the_field(index: int, data) -> None:
    name, low, high = _RANGES[index]
    bad = data.draw(
        st.one_of(st.integers(high + 1, 10_000), st.integers(0, low - 1) if low else st.nothing())
    )
    fields = ["*"] * 5
    fields[index] = str(bad)
    with pytest.raises(ValueError) as info:
        validate_cron(" ".join(fields))
    assert f"{name} field '{bad}': {bad} is out of range (allowed: {low}-{high}" in str(info.value)


# --- schedules ----------------------------------------------------------------------------


def test_schedule_normalizes_targets() -> None:
    schedule = ScheduleDefinition("nightly", "0 3 * * *", [raw, "cleaned", "raw"], "every night")
    assert schedule.targets == ("raw", "cleaned")
    assert not schedule.target_all
    assert (schedule.name, schedule.cron_schedule, schedule.description) == (
        "nightly",
        "0 3 * * *",
        "every night",
    )
    assert ScheduleDefinition("one", "@daily", "raw").targets == ("raw",)
    assert ScheduleDefinition("obj", "@daily", raw).targets == ("raw",)
    every = ScheduleDefinition("all", "@hourly", "*")
    assert (every.targets, every.target_all) == ((), True)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("bad name", "@daily", "*"), "schedule name 'bad name' is not a valid key"),
        (
            ("hourly_job", "0 25 * * *", "*"),
            "schedule 'hourly_job': invalid cron_schedule '0 25 * * *': hour field '25'",
        ),
        (("s", "@daily", []), "schedule 's': target is empty"),
        (("s", "@daily", ["raw", 3]), "schedule 's': target[1] must be a string, got int 3"),
        (("s", "@daily", ["raw", "*"]), "'*' selects every asset and must be the whole target"),
        (("s", "@daily", 7), "schedule 's': target must be asset keys"),
    ],
)
def test_schedule_errors(args: tuple, expected: str) -> None:
    with pytest.raises(DefinitionsError) as info:
        ScheduleDefinition(*args)
    assert expected in str(info.value)


# --- Definitions --------------------------------------------------------------------------


def _diamond():
    """top -> left, right -> bottom; `extra` is independent and defined first."""

    @asset
    def extra():
        return 0

    @asset
    def bottom(left, right):
        return left + right

    @asset
    def right(top):
        return top * 2

    @asset
    def left(top, db):
        return top + db

    @asset
    def top():
        return 1

    return [extra, bottom, right, left, top]


def test_definitions_store_and_describe() -> None:
    assets = _diamond()
    resources = {"db": 5}
    defs = Definitions(assets=[*assets, assets[0]], resources=resources)
    assert defs.assets == tuple(assets)
    assert defs.asset_keys == ("extra", "bottom", "right", "left", "top")
    resources["other"] = 1
    assert defs.resources == {"db": 5}
    assert defs.schedules == ()
    assert defs.get_asset("left") is assets[3]
    assert defs.deps_of("bottom") == ("left", "right")
    assert defs.deps_of("left") == ("top",)
    assert defs.resources_of("left") == ("db",)
    assert defs.resources_of("bottom") == ()


def test_toposort_and_upstream_closure_on_a_diamond() -> None:
    defs = Definitions(assets=_diamond(), resources={"db": 5})
    # Ties go to definition order: right is defined before left.
    assert defs.toposort() == ("extra", "top", "right", "left", "bottom")
    assert defs.upstream_closure(["bottom"]) == ("top", "right", "left", "bottom")
    assert defs.upstream_closure("left") == ("top", "left")
    assert defs.upstream_closure(["left", "extra"]) == ("extra", "top", "left")
    assert defs.toposort(["bottom", "top"]) == ("top", "bottom")
    assert defs.toposort("right") == ("right",)


def test_context_and_optional_params_are_not_deps() -> None:
    defs = Definitions(assets=[raw, clean_rows], resources={"db": object()})
    assert defs.deps_of("cleaned") == ("raw",)
    assert defs.resources_of("cleaned") == ("db",)


def test_unknown_key_lookups_name_known_keys() -> None:
    defs = Definitions(assets=[raw])
    for call in (defs.get_asset, defs.deps_of, defs.resources_of, defs.upstream_closure):
        with pytest.raises(KeyError) as info:
            call("nope")
        assert str(info.value) == "unknown asset 'nope' (assets: raw)"
        assert isinstance(info.value, UnknownKeyError)
    with pytest.raises(DefinitionsError, match=r"unknown asset 'nope' \(assets: raw\)"):
        defs.toposort(["raw", "nope"])
    with pytest.raises(UnknownKeyError, match=r"unknown schedule 'x' \(schedules: none\)"):
        defs.schedule_targets("x")


def test_schedule_targets_resolve_star_and_lists() -> None:
    every = ScheduleDefinition("every", "@daily", "*")
    some = ScheduleDefinition("some", "*/5 * * * *", [raw])
    defs = Definitions(
        assets=[raw, clean_rows], resources={"db": 1}, schedules=[every, some, every]
    )
    assert defs.schedules == (every, some)
    assert defs.schedule_targets(every) == ("raw", "cleaned")
    assert defs.schedule_targets("some") == ("raw",)


def _error(**kwargs) -> str:
    with pytest.raises(DefinitionsError) as info:
        Definitions(**kwargs)
    return str(info.value)


def test_wrong_types_name_position_and_type() -> None:
    def forgot():
        return 1

    message = _error(assets=[raw, 3, forgot])
    assert "assets[1]: expected a AssetDefinition (made with @asset), got int 3" in message
    assert "assets[2]: expected a AssetDefinition" in message
    assert "did you forget @asset?" in message
    assert "assets must be a list of AssetDefinition, got AssetDefinition" in _error(assets=raw)
    assert "resources must be a dict" in _error(resources=["db"])
    assert "schedules[0]: expected a ScheduleDefinition, got str" in _error(schedules=["x"])


def test_bad_resource_keys() -> None:
    assert "resource key 'context' is reserved" in _error(resources={"context": 1})
    assert "resource key 'a b' is not a valid key" in _error(resources={"a b": 1})


def test_duplicate_asset_keys_name_both_functions() -> None:
    @asset(name="raw")
    def other_raw():
        return []

    message = _error(assets=[raw, other_raw])
    assert message.startswith(f"duplicate asset key 'raw': defined by {__name__}.raw and by")
    assert "test_duplicate_asset_keys_name_both_functions.<locals>.other_raw" in message


def test_same_function_twice_with_different_groups_is_a_duplicate() -> None:
    message = _error(assets=[raw, raw.with_group("g")])
    assert "(group 'default')" in message
    assert "(group 'g')" in message


def test_unbound_parameter_names_asset_assets_and_resources() -> None:
    @asset
    def a():
        return 1

    @asset
    def b(a, x):
        return a

    message = _error(assets=[a, b], resources={"db": 1})
    assert message == (
        "asset 'b': parameter 'x' is neither an asset nor a resource (assets: a, b; resources: db)"
    )


def test_unbound_parameter_suggests_close_name() -> None:
    @asset
    def orders():
        return 1

    @asset
    def report(order):
        return order

    assert "did you mean 'orders'?" in _error(assets=[orders, report])


def test_asset_key_equal_to_resource_key_is_ambiguous() -> None:
    @asset
    def db():
        return 1

    message = _error(assets=[db], resources={"db": object()})
    assert "asset 'db' has the same name as a resource" in message


def test_cycle_is_reported_in_definition_order() -> None:
    @asset
    def c(b):
        return b

    @asset
    def a(c):
        return c

    @asset
    def b(a):
        return a

    @asset
    def downstream(a):
        return a

    message = _error(assets=[downstream, c, a, b])
    assert message.startswith("dependency cycle: c -> b -> a -> c")
    assert message.count("dependency cycle") == 1


def test_self_dependency_is_a_cycle() -> None:
    @asset
    def me(me):
        return me

    assert _error(assets=[me]).startswith("dependency cycle: me -> me")


def test_schedule_problems() -> None:
    first = ScheduleDefinition("nightly", "@daily", "*")
    second = ScheduleDefinition("nightly", "@hourly", "*")
    message = _error(assets=[raw], schedules=[first, second])
    assert "duplicate schedule name 'nightly'" in message
    wrong = ScheduleDefinition("weekly_report", "@weekly", ["raw", "report"])
    message = _error(assets=[raw], schedules=[wrong])
    assert message == "schedule 'weekly_report' targets unknown asset 'report' (assets: raw)"


def test_several_problems_are_reported_together() -> None:
    @asset
    def lonely(missing):
        return missing

    with pytest.raises(DefinitionsError) as info:
        Definitions(assets=[lonely, 3], resources={"context": 1})
    assert str(info.value).startswith("3 problems in Definitions:\n- ")
    assert len(info.value.problems) == 3


# --- load_assets_from_modules -------------------------------------------------------------


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_load_assets_from_modules_order_dedupe_and_groups() -> None:
    @asset
    def first():
        return 1

    @asset
    def second(first):
        return first

    one = _module("one", second=second, helper=len, first=first, again=second)
    two = _module("two", shared=first, third=raw)
    loaded = load_assets_from_modules([one, two])
    assert [a.key for a in loaded] == ["second", "first", "raw"]
    assert loaded[0] is second

    grouped = load_assets_from_modules([one, two], group_name="mine")
    assert [(a.key, a.group) for a in grouped] == [
        ("second", "mine"),
        ("first", "mine"),
        ("raw", "mine"),
    ]
    assert raw.group == "default"
    assert grouped[0] is not second
    defs = Definitions(assets=grouped)
    assert defs.toposort() == ("first", "second", "raw")


def test_load_assets_from_modules_errors() -> None:
    with pytest.raises(DefinitionsError, match=r"modules\[1\] is not a module, got str"):
        load_assets_from_modules([_module("m"), "os"])
    with pytest.raises(DefinitionsError, match="group_name 'bad-group' is not a valid key"):
        load_assets_from_modules([_module("m", r=raw)], group_name="bad-group")
    assert load_assets_from_modules(_module("single", r=raw)) == [raw]


# --- Python 3.8 ---------------------------------------------------------------------------

_PY38_CODE = """
import sys
from supervisor import Definitions, DefinitionsError, ScheduleDefinition, asset

@asset
def a():
    return 1

@asset(group_name="g")
def b(a, db, context=None):
    return a + db

@asset
def x(y):
    return y

@asset
def y(x):
    return x

try:
    Definitions(assets=[a, x, y])
except DefinitionsError as exc:
    print(exc)
defs = Definitions(
    assets=[a, b], resources={"db": 2}, schedules=[ScheduleDefinition("s", "0 3 * * mon-fri", "*")]
)
print(sys.version_info[:2], defs.toposort(), defs.schedule_targets("s"), b(1, 2))
"""


def test_sdk_runs_on_python_38() -> None:
    if not os.path.exists(PYTHON38):
        pytest.skip(f"{PYTHON38} not found")
    result = subprocess.run(
        [PYTHON38, "-I", "-c", f"import sys; sys.path.insert(0, '.')\n{_PY38_CODE}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "dependency cycle: x -> y -> x (each asset takes the next one as a parameter)",
        "(3, 8) ('a', 'b') ('a', 'b') 3",
    ]
