"""Checks a task's parameters at submit time against its type's schema and normalizes them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from taskq import payload
from taskq.errors import InvalidParameters, did_you_mean
from taskq.work import data as data_work
from taskq.work import files as files_work

if TYPE_CHECKING:
    from taskq.config import ParamSpec, TaskType

MAX_ITEMS = 1_000_000
MAX_TEXT_CHARS = 10_000_000
MAX_RECIPIENTS = 100
MAX_ITEM_PROBLEMS = 5  # a million bad items should not make a million-line error
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
# Addresses getaddresses() always reads back as themselves (checked by fuzzing against it in
# tests/unit/test_params.py): taken without parsing, which costs ~15 us an address.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
                            r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# Relative paths of plain names that neither pathlib flavour reads as a drive or a root.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
# Never in an email header (to, cc, from, subject): control characters but tab, which
# include every character some standard reads as a line break (CR, LF, VT, FF, the
# separators 1C-1E, NEL), and the Unicode line and paragraph separators.
_HEADER_BREAK = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
HEADER_RULE = "must not contain line breaks or other control characters"

Problems = list[str]
Check = Callable[[Any, str, Problems], Any]
_MISSING: Any = object()


@dataclass(frozen=True)
class Field:
    """One parameter: how to check and normalize it, whether it is required, its default."""

    check: Check
    required: bool = False
    default: Any = _MISSING  # _MISSING: leave it out, so the work's own default applies
    key: str | None = None  # the name the work receives, when it differs from the user's
    kind: str = ""  # what it takes, in words (`taskq types`)


Schema = Mapping[str, Field]


def validate(task_type: TaskType, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return `params` normalized for `task_type`; InvalidParameters names every problem."""
    if not isinstance(params, Mapping):
        raise InvalidParameters([f"parameters: must be a mapping of names to values, "
                                 f"got {type(params).__name__}"])
    # First what no type can take (too deep, too big, not Unicode): the checks below would
    # trip on it, and a worker could not take its message.
    problems: Problems = payload.problems(dict(params))
    if problems:
        raise InvalidParameters(problems)
    if task_type.parameters is None:
        schema = BUILTIN_SCHEMAS[task_type.name]
        result = _apply(schema, params, problems)
        for cross_check in CROSS_CHECKS.get(task_type.name, ()):
            cross_check(result, problems)
    else:
        result = _apply(_custom_schema(task_type.parameters), params, problems)
    if problems:
        raise InvalidParameters(problems)
    return result


def _apply(schema: Schema, params: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """Check each parameter; the result holds only those that passed (and defaults)."""
    for name in params:
        if name not in schema:
            problems.append(f"parameters.{name}: unknown parameter"
                            + did_you_mean(str(name), list(schema)))
    result: dict[str, Any] = {}
    for name, spec in schema.items():
        key = spec.key or name
        if name in params:
            before = len(problems)
            value = spec.check(params[name], f"parameters.{name}", problems)
            if len(problems) == before:
                result[key] = value
        elif spec.required:
            problems.append(f"parameters.{name}: is required")
        elif spec.default is not _MISSING:
            result[key] = spec.default
    return result


# Checks of single values: each returns the normalized value or notes a problem.

def _text(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append(f"{path}: must be a string, got {_describe(value)}")
    return value


def _one_line(value: Any, path: str, problems: Problems) -> Any:
    """A header's text: one line, whatever a reader takes for a line break."""
    if isinstance(value, str) and _HEADER_BREAK.search(value):
        problems.append(f"{path}: {HEADER_RULE}")
        return value
    return _text(value, path, problems)


def _one_of(*choices: str) -> Check:
    def check(value: Any, path: str, problems: Problems) -> Any:
        if value not in choices:
            hint = did_you_mean(value, list(choices)) if isinstance(value, str) else ""
            problems.append(f"{path}: must be one of {', '.join(choices)}, "
                            f"got {_describe(value)}{hint}")
        return value
    return check


def _address(value: Any, path: str, problems: Problems) -> Any:
    if type(value) is str and _PLAIN_ADDRESS.fullmatch(value):
        return value
    return _parsed_address(value, path, problems)


def _parsed_address(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append(f"{path}: must be an email address, got {_describe(value)}")
    elif _HEADER_BREAK.search(value):
        problems.append(f"{path}: {HEADER_RULE}")
    else:
        found = getaddresses([value])
        if len(found) != 1 or not _ADDRESS.match(found[0][1]):
            problems.append(f"{path}: {value!r} is not an email address")
        return value.strip()
    return value


def _addresses(value: Any, path: str, problems: Problems) -> Any:
    """One address or a list of 1..MAX_RECIPIENTS; always returned as a list."""
    if isinstance(value, str):
        return [_address(value, path, problems)]
    if not isinstance(value, list) or not value:
        problems.append(f"{path}: must be an email address or a non-empty list of them")
        return value
    if len(value) > MAX_RECIPIENTS:
        problems.append(f"{path}: at most {MAX_RECIPIENTS} addresses, got {len(value)}")
        return value
    return [_address(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]


def _relative_path(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append(f"{path}: must be a path relative to the files root, "
                        f"got {_describe(value)}")
    elif not value.strip():
        problems.append(f"{path}: must not be empty")
    elif "\0" in value:
        problems.append(f"{path}: must not contain NUL bytes")
    elif _leaves_root(value):
        problems.append(f"{path}: must stay inside the files root")
    return value


def _leaves_root(name: str) -> bool:
    if _PLAIN_PATH.fullmatch(name):
        return ".." in name.split("/")
    return _parsed_leaves_root(name)


def _parsed_leaves_root(name: str) -> bool:
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    absolute = posix.is_absolute() or windows.is_absolute() or bool(windows.drive)
    return absolute or name.startswith("\\") or ".." in posix.parts or ".." in windows.parts


def _data(value: Any, path: str, problems: Problems) -> Any:
    """A string, a list of finite numbers or a list of records, within the size limits."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            problems.append(f"{path}: text too long: {len(value):,} characters "
                            f"(at most {MAX_TEXT_CHARS:,})")
    elif not isinstance(value, list):
        problems.append(f"{path}: must be a string, a list of numbers or a list of records, "
                        f"got {_describe(value)}")
    elif not value:
        problems.append(f"{path}: must not be an empty list")
    elif len(value) > MAX_ITEMS:
        problems.append(f"{path}: too many items: {len(value):,} (at most {MAX_ITEMS:,})")
    else:
        _check_items(value, path, problems)
    return value


def _check_items(items: list[Any], path: str, problems: Problems) -> None:
    """Every item must be of the first item's kind: a finite number, or a record."""
    fits: Callable[[Any], bool]
    if _all_finite_numbers(items):
        return
    if data_work.is_number(items[0]):
        fits, wanted = data_work.is_finite_number, "a finite number"
    elif isinstance(items[0], dict):
        fits, wanted = _is_record, "a record (mapping)"
    else:
        problems.append(f"{path}[0]: items must be numbers or records, "
                        f"got {_describe(items[0])}")
        return
    bad = [i for i, item in enumerate(items) if not fits(item)]
    for i in bad[:MAX_ITEM_PROBLEMS]:
        problems.append(f"{path}[{i}]: must be {wanted} like the first item, "
                        f"got {_describe(items[i])}")
    if len(bad) > MAX_ITEM_PROBLEMS:
        problems.append(f"{path}: {len(bad) - MAX_ITEM_PROBLEMS:,} more items are not {wanted}")


def _all_finite_numbers(items: list[Any]) -> bool:
    """A quick look in C loops: True if every item is an int or a float and their sum is
    finite (so is each of them); False: look one by one."""
    try:
        return _NUMBER_TYPES.issuperset(map(type, items)) and math.isfinite(sum(items))
    except OverflowError:  # an int too large for a float
        return False


_NUMBER_TYPES = frozenset({int, float})


def _is_record(value: Any) -> bool:
    return isinstance(value, dict)


def _describe(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 40 else f"{type(value).__name__} {text[:37]}..."


# Checks across parameters of one type, run on what passed the single-value checks.

def _operation_fits_data(result: dict[str, Any], problems: Problems) -> None:
    """Resolve `auto`, and refuse an operation the data's shape cannot take."""
    if "data" not in result or "operation" not in result:
        return
    shape = data_work.shape_of(result["data"])
    operation = result["operation"]
    if operation == "auto":
        result["operation"] = data_work.AUTO[shape]
    elif data_work.OPERATIONS[operation] != shape:
        wanted = data_work.SHAPE_NAMES[data_work.OPERATIONS[operation]]
        problems.append(f"parameters.operation: {operation!r} needs {wanted}, "
                        f"but data is {data_work.SHAPE_NAMES[shape]}")


BUILTIN_SCHEMAS: dict[str, Schema] = {
    "data_processing": {
        "data": Field(_data, required=True, kind="text, or a list of numbers or of records"),
        "operation": Field(_one_of("auto", *data_work.OPERATIONS), default="auto",
                           kind="one of " + ", ".join(("auto", *data_work.OPERATIONS))),
    },
    "email_sending": {
        "to": Field(_addresses, required=True, kind="address or list of addresses"),
        "cc": Field(_addresses, kind="address or list of addresses"),
        "subject": Field(_one_line, default="taskq message", kind="one line of text"),
        "body": Field(_text, default="", kind="text"),
        "from": Field(_address, key="sender", kind="address"),
    },
    "file_processing": {
        "filename": Field(_relative_path, required=True, kind="path below the files root"),
        "operation": Field(_one_of(*files_work.OPERATIONS), default="stats",
                           kind="one of " + ", ".join(files_work.OPERATIONS)),
    },
}
CROSS_CHECKS: dict[str, tuple[Callable[[dict[str, Any], Problems], None], ...]] = {
    "data_processing": (_operation_fits_data,),
}


# Custom types: the generic kinds of config/celery.yaml.

def _of_kind(kind: str, types: type | tuple[type, ...], article: str) -> Check:
    def check(value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            problems.append(f"{path}: must be {article} {kind}, got {_describe(value)}")
        return value
    return check


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


KIND_CHECKS: dict[str, Check] = {
    "string": _of_kind("string", str, "a"),
    "integer": _of_kind("integer", int, "an"),
    "number": _of_kind("number", (int, float), "a"),
    "boolean": _of_kind("boolean", bool, "a"),
    "list": _of_kind("list", list, "a"),
    "object": _of_kind("object", dict, "an"),
}


def _custom_schema(specs: Mapping[str, ParamSpec]) -> Schema:
    return {
        name: Field(KIND_CHECKS[spec.kind], required=spec.required,
                    default=_MISSING if spec.default is None else spec.default, kind=spec.kind)
        for name, spec in specs.items()
    }


def schema_of(task_type: TaskType) -> Schema:
    """The parameters `task_type` takes."""
    if task_type.parameters is None:
        return BUILTIN_SCHEMAS[task_type.name]
    return _custom_schema(task_type.parameters)


def has_default(field: Field) -> bool:
    return field.default is not _MISSING
