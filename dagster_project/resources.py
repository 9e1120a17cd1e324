"""Resources by environment: the connections file (split into the connections that load and those that
don't) and the dbt CLI, configured from CANONRY_* variables."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from canonry.config import Connection, Problem, config_path
from canonry.transform import DBT_DIR, dbt_env, parse
from canonry.warehouse import dbt_manifest_path as manifest_path

_CONNECTION_PATH = re.compile(r"^connections\.(\d+)(\.|$)")
# Problems of one connection that still leave the file's other connections well defined. A duplicate id
# does not: two partitions would share a key.
_FILE_LEVEL_CODES = {"duplicate_id"}


class ConnectionsFileInvalid(Exception):
    """The connections file cannot be read as a whole: the code location does not load. The message is
    the validation's (file:line, code, hint), as `canonry validate` prints it."""


@dataclass
class ConnectionsInLocation:
    """What the code location is built from: every connection the file declares, and for each broken one
    (an unset secret, an unknown provider, …) its validation problems. A broken connection keeps its
    place (partition, schedule) and reports its problems when run; the others are unaffected."""

    path: Path
    connections: list[Connection]
    problems: dict[str, list[Problem]] = field(default_factory=dict)

    def valid(self) -> list[Connection]:
        return [c for c in self.connections if c.id not in self.problems]

    def describe_problems(self, connection_id: str) -> str:
        return "; ".join(p.render() for p in self.problems.get(connection_id, []))


def _render(path: Path, problems: list[Problem]) -> str:
    listing = "\n  ".join(p.render() for p in problems)
    return (f"the connections file {path} is invalid:\n  {listing}\n"
            f"Fix the problems listed (`canonry validate --config {path}`), then reload the code location.")


def connections_in_location(path: Path | None = None) -> ConnectionsInLocation:
    from canonry.validation import validate_file

    resolved = config_path(path)
    try:
        model, problems = validate_file(resolved)
    except Exception as exc:  # noqa: BLE001 - a file the validator cannot even read: say which and why
        raise ConnectionsFileInvalid(f"the connections file {resolved} cannot be read: "
                                     f"{type(exc).__name__}: {exc}") from None
    by_index: dict[int, list[Problem]] = {}
    file_level: list[Problem] = []
    for problem in problems:
        match = _CONNECTION_PATH.match(problem.path)
        if match is None or problem.code in _FILE_LEVEL_CODES:
            file_level.append(problem)
        else:
            by_index.setdefault(int(match.group(1)), []).append(problem)
    if model is None or file_level:
        raise ConnectionsFileInvalid(_render(resolved, file_level or problems))
    broken = {model.connections[i].id: found for i, found in by_index.items()}
    return ConnectionsInLocation(resolved, list(model.connections), broken)


def dbt_project() -> DbtProject:
    """The dbt project, parsed into our target dir so the manifest exists when definitions load."""
    if not manifest_path().exists():
        result = parse()
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.error}")
    return DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR, target_path=manifest_path().parent)


def dbt_resource() -> DbtCliResource:
    os.environ.update(dbt_env())
    executable = shutil.which("dbt") or str(Path(os.sys.executable).parent / "dbt")
    return DbtCliResource(project_dir=dbt_project(), profiles_dir=str(DBT_DIR), dbt_executable=executable)
