"""Reading a scenario file: YAML in, a validated Scenario or every problem by file, line, field.

The YAML is composed into a node tree first and constructed from that same
tree, so that each pydantic error location can be followed back through the
nodes to the line it came from.

The YAML dialect is PyYAML's safe subset with YAML 1.1's surprises taken
out: only `true`/`false` are booleans (`on`, `no`, `yes`, `off` stay text:
`on:` is a policy key and `no` a language tag), and only plain decimal
numbers are numbers (`0123` is not octal, `1:30` not sexagesimal).
"""

import difflib
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from simulator.protocol import AgreementProfile, profile_ids
from simulator.scenario.model import (
    PROBLEMS_ERROR,
    UNION_TAGS,
    Loc,
    Scenario,
    error_text,
    field_path,
)
from simulator.scenario.problems import InvalidScenarioError, Problem

MAX_BYTES = 5 * 1024 * 1024
# Aliases let a small file expand into a huge tree (a "billion laughs");
# validation walks the expanded tree, so it is bounded too.
MAX_NODES = 1_000_000
# Far deeper than any scenario; libyaml builds the node tree by recursing in
# C, where a file nested deeply enough crashes the process instead of raising.
MAX_DEPTH = 100
_TOO_DEEP = f"is nested more than {MAX_DEPTH} levels deep; no scenario needs that"

_MERGE_TAG = "tag:yaml.org,2002:merge"
_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


try:
    # libyaml parses some twenty times faster than PyYAML's pure-Python parser,
    # which takes tens of seconds on a file near MAX_BYTES.
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]


class _Loader(_SafeBase):
    """The safe loader with YAML 1.2-like booleans and numbers (see the module docstring)."""

    # Replaces the inherited table for this class only; add_implicit_resolver
    # below then extends this copy, never the shared one.
    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class-level table)
        first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
        for first, resolvers in _SafeBase.yaml_implicit_resolvers.items()
    }


def _guarded(construct: Any) -> Any:
    """A constructor that reports a value it cannot build as a YAML error at its line."""

    def guarded(loader: _Loader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as error:
            # PyYAML lets these escape, e.g. for 2026-02-30 or a 5000-digit number.
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} cannot be read: {error}", node.start_mark
            ) from None

    return guarded


for _tag in ("timestamp", "int", "float"):
    _Loader.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _guarded(_Loader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]),
    )

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; raise InvalidScenarioError naming file, line and field."""
    return parse_scenario(_read_text(Path(path), "a scenario file"), path)


def load_profile_file(path: Path | str) -> dict[str, Any]:
    """An agreement profile file, validated; its data, as a scenario's `profiles` holds it.

    Raises InvalidScenarioError naming the profile file, line and field.
    """
    path = Path(path)
    text = _read_text(path, "a profile file")
    root, data = _read(
        text,
        path,
        expected="id, title, parties, rules, ...",
        empty="a profile needs at least id, title, ...",
    )
    try:
        AgreementProfile.model_validate(data)
    except ValidationError as invalid:
        errors = _without_echoes(invalid.errors())
        problems = [p for error in errors for p in _problems(error, root, AgreementProfile)]
        raise InvalidScenarioError.of(path, problems) from None
    # A profile file is always one of your own: under a shipped id, a scenario naming it
    # would be refused, so the file is refused on its own (`simulator agreements FILE`).
    if data["id"] in profile_ids():
        shipped = f"{data['id']!r} is a shipped agreement profile: give yours another id"
        raise InvalidScenarioError.of(path, [Problem(_line(root, ("id",)), "id", shipped)])
    return data


def _read_text(path: Path, what: str) -> str:
    try:
        if path.is_dir():
            raise _problem(path, f"is a directory, not {what}")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _problem(path, f"is {size:,} bytes; {what} is at most {MAX_BYTES:,}")
        with path.open("rb") as file:
            # Read one byte past the limit: a file that grew since stat() is caught too.
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _problem(path, "no such file") from None
    except OSError as error:
        raise _problem(path, f"cannot be read: {error.strerror or error}") from None
    if len(raw) > MAX_BYTES:
        raise _problem(path, f"is over {MAX_BYTES:,} bytes; {what} is at most that")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _problem(path, "is not UTF-8 text", line=line) from None


def parse_scenario(text: str, path: Path | str = "<scenario>") -> Scenario:
    """Validate scenario YAML; `path` names the source in errors."""
    root, data = _read(text, path)
    _include_profiles(data, path)
    try:
        return Scenario.model_validate(data)
    except ValidationError as invalid:
        errors = _without_echoes(invalid.errors())
        problems = [p for error in errors for p in _problems(error, root)]
        raise InvalidScenarioError.of(path, problems) from None


def _include_profiles(data: dict[str, Any], path: Path | str) -> None:
    """Replace each path in `profiles` by the profile file's content.

    A path is relative to the scenario's directory; the file is validated on its own, so
    its problems name it, its lines and fields. The scenario then holds the profile
    itself: a run records it, and a replay needs no file.
    """
    entries = data.get("profiles")
    if not isinstance(entries, list):
        return
    base = Path(path).parent if str(path) != "<scenario>" else Path.cwd()
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            continue
        if not entry.endswith((".yaml", ".yml")):
            raise _problem(
                path, f"profiles[{index}]: {entry!r} is not the path of a profile (.yaml) file"
            )
        entries[index] = load_profile_file(base / entry)


def parse_yaml(text: str, path: Path | str = "<scenario>") -> dict[str, Any]:
    """The scenario's YAML as plain data, in this module's dialect, before validation.

    Refuses what `parse_scenario` refuses before validating: syntax errors,
    duplicate keys, an empty file, a top level that is not a mapping.
    """
    return _read(text, path)[1]


def _read(
    text: str,
    path: Path | str,
    *,
    expected: str = "version, exercise, parties, ...",
    empty: str = "a scenario needs at least version, exercise, ...",
) -> tuple[yaml.MappingNode, dict[str, Any]]:
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _problem(path, f"is over {MAX_BYTES:,} bytes; a scenario file is at most that")
    root, data = _read_yaml(text, path, empty)
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise _problem(
            path,
            f"the top level must be a mapping ({expected}), not {kind}",
            line=root.start_mark.line + 1,
        )
    return root, data


def _problem(path: Path | str, problem: str, *, line: int | None = None) -> InvalidScenarioError:
    return InvalidScenarioError(path, problem, line=line)


# --- YAML -------------------------------------------------------------------


def _read_yaml(text: str, path: Path | str, empty: str) -> tuple[yaml.Node, Any]:
    loader: _Loader | None = None
    try:
        _check_events(text, path)
        loader = _Loader(text)
        root = loader.get_single_node()
        # A document with nothing in it ("---" alone) composes to a null scalar.
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
            raise _problem(path, f"is empty: {empty}")
        _check_tree(root, path)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(part for part in (error.context, error.problem) if part)
        context = error.context_mark
        if context is not None and mark is not None and context.line != mark.line:
            what += f" (in what starts on line {context.line + 1})"
        if "maximum nesting depth" in what:
            # PyYAML >= 6.0.3 stops a deep flow collection in its scanner, ahead of the
            # parser events _check_events counts; the user's problem is the same one.
            raise _problem(path, _TOO_DEEP, line=line) from None
        raise _problem(path, f"YAML syntax: {what or error}", line=line) from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        character = (
            f"U+{error.character:04X}" if isinstance(error.character, int) else "a character"
        )
        raise _problem(
            path, f"YAML syntax: {character} is not allowed ({error.reason})", line=line
        ) from None
    except yaml.YAMLError as error:
        raise _problem(path, f"YAML syntax: {error}") from None
    except RecursionError:
        raise _problem(path, "is nested too deeply to be a scenario") from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def _check_events(text: str, path: Path | str) -> None:
    """Refuse explicit tags, and nesting deeper than MAX_DEPTH, from the parser's events.

    Events come without recursion, so even a file nested far too deep for
    libyaml's recursive composer is refused here without harm. Tags
    (`!!python/object`, `!!timestamp`) are never needed in a scenario and
    some make PyYAML fail in ways it does not report as YAML errors.
    """
    # The reader checks for unprintable characters as soon as it is made.
    parser = _Loader(text)
    try:
        depth = 0
        while parser.check_event():
            event = parser.get_event()
            mark = event.start_mark if event is not None else None
            line = mark.line + 1 if mark is not None else None
            # "!" alone only marks a scalar as text; every other tag is refused.
            tag = getattr(event, "tag", None)
            if tag is not None and tag != "!":
                raise _problem(
                    path, f"the tag {tag!r} is not allowed: write the value plainly", line=line
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _problem(path, _TOO_DEEP, line=line)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        parser.dispose()


def _check_tree(root: yaml.Node, path: Path | str) -> None:
    """Refuse duplicate keys (PyYAML keeps the last silently) and trees too big once expanded."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in in_progress:
            raise _problem(path, "an alias refers to itself", line=node.start_mark.line + 1)
        in_progress.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, path)
            for key, value in node.value:
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        in_progress.discard(id(node))
        sizes[id(node)] = total
        if total > MAX_NODES:
            raise _problem(
                path,
                f"expands to over {MAX_NODES:,} values (through aliases); that is too big",
                line=node.start_mark.line + 1,
            )
        return total

    size(root)


def _check_duplicates(node: yaml.MappingNode, path: Path | str) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise _problem(
                path,
                f"duplicate key {key.value!r} (first on line {first.start_mark.line + 1}); "
                "YAML would silently keep only the last one",
                line=key.start_mark.line + 1,
            )


# --- errors -----------------------------------------------------------------


def _without_echoes(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop "too short after validation" where it only echoes an invalid item inside.

    Pydantic leaves an invalid item out of a list before checking its length,
    so one bad party also reports "at least 2 items, not 1": noise that
    points away from the real problem.
    """

    def echoes(error: ErrorDetails) -> bool:
        loc = tuple(error["loc"])
        return error["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc
            for other in errors
        )

    return [error for error in errors if not echoes(error)]


def _problems(
    error: ErrorDetails, root: yaml.Node, model: type[BaseModel] = Scenario
) -> Iterator[Problem]:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == PROBLEMS_ERROR:
        for relative, text in error.get("ctx", {}).get("problems", ()):
            full = (*loc, *relative)
            yield Problem(_line(root, full), field_path(full), text)
        return
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = _suggest(key, _keys_at(loc[:-1], model))
        yield Problem(_line(root, loc), field_path(loc), f"unknown key {key!r}{hint}")
        return
    yield Problem(_line(root, loc), field_path(loc), error_text(error))


def _line(root: yaml.Node, loc: Loc) -> int:
    """The line where the location is written: its key, its list item, or the nearest parent."""
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        if part == "[key]":
            break  # a key itself was refused; `line` already points at it
        if isinstance(node, yaml.MappingNode):
            found = _entry(node, str(part))
            if found is None:
                if part in UNION_TAGS:
                    continue
                break  # a missing key: its mapping's line is as close as it gets
            key, node = found
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        elif part in UNION_TAGS:
            continue
        else:
            break
    return line


def _entry(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value
    return None


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _keys_at(loc: Loc, model: type[BaseModel] = Scenario) -> list[str]:
    """The keys the model at `loc` accepts, for a "did you mean" hint; [] when unsure."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    found = _model(current)
    if found is None:
        return []
    return [field.alias or name for name, field in found.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members:
        for member in members:
            if any(getattr(meta, "tag", None) == part for meta in _metadata(member)):
                return member
        candidates = [_step(member, part) for member in members]
        found = [c for c in candidates if c is not None]
        return found[0] if len(found) == 1 else None
    model = _model(annotation)
    if model is not None:
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (tuple, list) and args and isinstance(part, int):
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _metadata(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Annotated:
        return tuple(getattr(annotation, "__metadata__", ()))
    return ()


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return ()


def _model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
