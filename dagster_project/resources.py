"""Resources by environment: the connections file and the dbt CLI, configured from CANONRY_* variables."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from canonry.config import ConnectionsFile, config_path, load_connections
from canonry.transform import DBT_DIR, dbt_env, manifest_path, parse


def connections() -> ConnectionsFile:
    return load_connections(config_path())


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
