"""Reading the connections file as hostile input: bounded in size, time and memory, never a traceback.

Why a PyYAML loader of our own rather than ruamel.yaml: PyYAML is already a dependency and its node
tree carries the line of every key; the dangerous parts are few and are refused while composing, before
any Python object exists:
- more than `MAX_NODES` values, an alias (`*name`) counting as every value it repeats: a "billion laughs"
  document is small as text and as a node graph, but every consumer that walks it as a tree — line
  index, pydantic, the checks — expands it exponentially. Aliases within the bound stay usable (PyYAML's
  own dumper writes them for shared lists); an alias inside the value it names (a cycle) is refused;
- nesting deeper than `MAX_DEPTH`, aliases expanded (the composer recurses: a deep document is a
  RecursionError);
- more than one document, explicit tags other than the plain ones;
- duplicate mapping keys (PyYAML keeps the last silently: a second `base_url` would win unseen).
ruamel.yaml would give duplicate-key errors, but it expands nothing either and a cap on aliases and
depth would still be ours to write; one parser is less to keep safe.

Every failure is a `LoadProblem` with a stable code and the line; no message quotes the file's content.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

MAX_BYTES = 1024 * 1024  # a file of 1,000 connections is ~300 KB
MAX_DEPTH = 32           # the schema needs 6
# Explicit tags a connections file may carry (`!!str 0123`); anything else (`!!python/...`, `!!binary`,
# `!!timestamp`, `!custom`) is refused while composing.
PLAIN_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null",
                                                                          "map", "seq")})
MAX_NODES = 25_000     # ~1,500 connections; composing is ~30 µs a value in pure Python


@dataclass
class LoadProblem:
    code: str
    line: int | None
    message: str
    hint: str
    path: tuple = ()


class _Refused(Exception):
    def __init__(self, problem: LoadProblem) -> None:
        self.problem = problem
        super().__init__(problem.message)


def read_text(path: Path) -> str:
    """The file's text; raises _Refused for a path that is not a readable, small, UTF-8 regular file."""
    name_hint = "pass --config with the path of a connections file, or set CANONRY_CONFIG"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _Refused(LoadProblem("file_not_found", None, "connections file not found",
                                   "create it (see data/connections.example.yml) or pass --config or set "
                                   "CANONRY_CONFIG")) from None
    except OSError as exc:
        raise _Refused(LoadProblem("file_unreadable", None, f"cannot read the file ({exc.strerror})",
                                   name_hint)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _Refused(LoadProblem("not_a_file", None, "this is a directory, not a connections file", name_hint))
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(LoadProblem("not_a_file", None, "this is not a regular file (a device, pipe or socket)",
                                   name_hint))
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _Refused(LoadProblem("file_unreadable", None, f"cannot read the file ({exc.strerror})",
                                   "check the file's permissions")) from None
    if len(raw) > MAX_BYTES:
        raise _Refused(LoadProblem("file_too_large", None, f"the file is larger than {MAX_BYTES:,} bytes",
                                   "a connections file is a few KB; check that --config names the right file"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise _Refused(LoadProblem("not_utf8", line, f"the file is not UTF-8 text (byte {exc.start} is not "
                                   "valid UTF-8)", "save the file as UTF-8")) from None


class _StrictComposer(Composer):
    """PyYAML's composer, counting as it goes: values (an alias counts as every value it stands for),
    depth (an alias as deep as what it stands for), tags, cycles and duplicate keys."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0      # of the node being composed
        self._values = 0     # values so far, aliases expanded
        self._deepest = 0    # deepest level reached so far, aliases expanded
        self._extent: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, height), once composed

    def _count(self, values: int, line: int, why: str) -> None:
        self._values += values
        if self._values > MAX_NODES:
            raise _Refused(LoadProblem("yaml_too_many_nodes", line, f"more than {MAX_NODES:,} values{why}",
                                       "write a smaller file; aliases (*name) count as every value they repeat "
                                       "(that is how a 'billion laughs' file explodes)"))

    def _too_deep(self, depth: int, line: int) -> None:
        if depth > MAX_DEPTH:
            raise _Refused(LoadProblem("yaml_too_deep", line, f"nesting deeper than {MAX_DEPTH} levels",
                                       "a connections file nests at most 6 levels; check the indentation"))

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 — PyYAML's signature
        event = self.peek_event()
        line = event.start_mark.line + 1
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in PLAIN_TAGS:
            raise _Refused(LoadProblem("yaml_tag", line, "a YAML tag (!name) this file cannot use: only plain "
                                       "values, lists and mappings",
                                       "write plain values (strings, numbers, lists, mappings) without tags"))
        depth = self._depth + 1
        if isinstance(event, yaml.AliasEvent):
            anchored = self.anchors.get(event.anchor)
            if anchored is not None:  # (an undefined alias is PyYAML's own error, below)
                if id(anchored) not in self._extent:
                    raise _Refused(LoadProblem("yaml_alias", line, "an alias (*name) inside the value it names "
                                               "(a cycle)", "write the value out in full"))
                values, height = self._extent[id(anchored)]
                self._count(values, line, " (aliases expanded)")
                self._too_deep(depth - 1 + height, line)
                self._deepest = max(self._deepest, depth - 1 + height)
            return super().compose_node(parent, index)
        before_values, before_deepest = self._values, self._deepest
        self._count(1, line, "")
        self._too_deep(depth, line)
        self._depth, self._deepest = depth, depth
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth = depth - 1
        if getattr(event, "anchor", None) is not None:
            self._extent[id(node)] = (self._values - before_values, self._deepest - depth + 1)
        self._deepest = max(before_deepest, self._deepest)
        return node

    def compose_mapping_node(self, anchor):  # noqa: ANN001, ANN201
        node = super().compose_mapping_node(anchor)
        first: dict[Any, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise _Refused(LoadProblem("invalid_key", key.start_mark.line + 1,
                                           "a mapping key must be a plain value, not a list or mapping",
                                           "write keys as plain names"))
            line = key.start_mark.line + 1
            if key.value in first:
                raise _Refused(LoadProblem("duplicate_key", line, f"key `{safe_key(key.value)}` appears twice in "
                                           f"this mapping (first at line {first[key.value]}, again at line "
                                           f"{line}); YAML readers would silently keep only one",
                                           "keep one of the two and delete the other"))
            first[key.value] = line
        return node


class _StrictConstructor(SafeConstructor):
    def construct_object(self, node, deep=False):  # noqa: ANN001, ANN201
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception:  # noqa: BLE001 — e.g. an integer of 5,000 digits; a value PyYAML itself trips on
            raise yaml.constructor.ConstructorError(None, None, "a value that cannot be read",
                                                    node.start_mark) from None


class _StrictLoader(Reader, Scanner, Parser, _StrictComposer, _StrictConstructor, Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _StrictComposer.__init__(self)
        _StrictConstructor.__init__(self)
        Resolver.__init__(self)


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,40}$")
_QUOTED = re.compile(r"'(?!<)[^']{4,}'|\"[^\"]{4,}\"")


def safe_key(key: Any) -> str:
    """A key name fit to print: a short identifier as itself, anything else only by its length."""
    text = str(key)
    return text if _KEY.match(text) or isinstance(key, int) else f"<key of {len(text)} chars>"


def _yaml_message(exc: yaml.YAMLError) -> str:
    """PyYAML's own description, with anything it quotes from the file removed."""
    if isinstance(exc, yaml.reader.ReaderError):
        return "a character YAML does not accept (a control character or a binary file)"
    if isinstance(exc, yaml.constructor.ConstructorError):
        problem = exc.problem or ""
        if "constructor for the tag" in problem:
            return "a YAML tag (!name) this file cannot use: only plain values, lists and mappings"
        return problem.replace("could not determine", "cannot read") or "a value that cannot be read"
    return _QUOTED.sub("'…'", str(getattr(exc, "problem", None) or "not valid YAML"))


def _reader_line(text: str, exc: yaml.reader.ReaderError) -> int:
    return text.count("\n", 0, max(0, exc.position)) + 1


def load_yaml(text: str) -> tuple[Any, dict[tuple, int]]:
    """(data, line of every key path); raises _Refused with the problem."""
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader checks every character here
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as exc:
            if "single document" in f"{exc.context} {exc.problem}":
                mark = exc.problem_mark
                raise _Refused(LoadProblem("yaml_multiple_documents", mark.line + 1 if mark else None,
                                           "the file holds more than one YAML document (---)",
                                           "keep one document: a connections file is one mapping")) from None
            raise
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise _Refused(LoadProblem("yaml_syntax", _reader_line(text, exc), _yaml_message(exc),
                                   "remove binary or control characters; save the file as plain UTF-8 text")) \
            from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise _Refused(LoadProblem("yaml_tag" if "tag" in (exc.problem or "") else "invalid_value",
                                   mark.line + 1 if mark else None, _yaml_message(exc),
                                   "write plain values (strings, numbers, lists, mappings) without tags")) \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _Refused(LoadProblem("yaml_syntax", mark.line + 1 if mark else None,
                                   f"not valid YAML: {_yaml_message(exc)}", "fix the YAML syntax at that line")) \
            from None
    except RecursionError:  # not reachable with MAX_DEPTH; kept so that no input can raise it
        raise _Refused(LoadProblem("yaml_too_deep", None, "nesting too deep", "check the indentation")) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, _line_index(node)


def _line_index(root: yaml.Node) -> dict[tuple, int]:
    """Map YAML paths (tuples of keys/indexes) to 1-based line numbers (iterative: no recursion)."""
    lines: dict[tuple, int] = {}
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[path + (key.value,)] = key.start_mark.line + 1
                stack.append((value, path + (key.value,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, path + (i,)))
    return lines


def load_file(path: Path) -> tuple[Any, dict[tuple, int], LoadProblem | None]:
    """(data, line index, None) or (None, {}, the problem)."""
    try:
        return (*load_yaml(read_text(path)), None)
    except _Refused as refused:
        return None, {}, refused.problem
