"""The connections file as hostile input: every case of tests/fixtures/hostile_connections/ through
`load_connections`, `canonry validate`, `validate --json` and `canonry sync` — rejected with its code and
line within 5 s, no traceback, no planted secret in any output — and the alias bomb's memory bound.

The bulk runs the CLI in-process (typer's runner, the same command functions); a sample of cases runs the
real `canonry` executable in a subprocess, measured (CPU time and max RSS of that child)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from canonry.cli import app
from canonry.config_file import MAX_BYTES, MAX_NODES
from canonry.errors import ConfigError
from canonry.validation import load_connections, validate_file

CORPUS = Path(__file__).parent / "fixtures" / "hostile_connections"
EXPECTED = yaml.safe_load((CORPUS / "expected.yml").read_text())
CASES: dict[str, list[dict]] = EXPECTED["cases"]
MADE: dict[str, dict] = EXPECTED["made_by_the_test"]
MARKER = "s3cr3t-canary"
SECONDS = 5.0
ALIAS_BOMB_MAX_RSS_MB = 200
CANONRY = Path(sys.executable).parent / "canonry"
# The real executable on a sample (each start costs ~1 s of imports): file-level failures, planted
# secrets, a URL trick, each through the commands named.
VALIDATE, JSON, SYNC = ["validate"], ["validate", "--json"], ["sync"]
SUBPROCESS_SAMPLE = {
    "01_alias_bomb.yml": (JSON, SYNC),
    "05_deep_nesting_flow.yml": (VALIDATE,),
    "07_non_utf8_latin1.yml": (JSON,),
    "09_directory.yml": (SYNC,),
    "14_duplicate_base_url.yml": (JSON,),
    "22_shadow_like.yml": (JSON, VALIDATE),
    "34_auth_password.yml": (SYNC,),
    "50_userinfo_password.yml": (JSON,),
}


def _recipe(name: str, directory: Path) -> Path:
    path = directory / name
    recipe = MADE[name]["recipe"]
    if recipe == "oversized":
        path.write_text("version: 1\n" + f"# {MARKER}-padding\n" * (MAX_BYTES // 20 + 1) + "connections: []\n")
    elif recipe == "many_values":
        path.write_text("version: 1\nconnections: [" + "1, " * (MAX_NODES + 10) + "1]\n")
    else:
        assert recipe == "missing" and not path.exists()
    return path


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory) -> Iterator[Path]:
    """One empty data dir for the module: every case is refused before anything is written (asserted)."""
    directory = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CANONRY_DATA_DIR", str(directory / "data"))
        patch.setenv("CANONRY_KEY_FILE", str(directory / "keys" / "master.key"))
        patch.delenv("CANONRY_WAREHOUSE", raising=False)
        patch.setenv("CANONRY_FIXTURE_TOKEN", "fixture-private-app-token")
        patch.delenv("CANONRY_CONFIG", raising=False)
        yield directory


def _all_cases() -> list[str]:
    return sorted(CASES) + sorted(MADE)


def _path_and_expected(name: str, directory: Path) -> tuple[Path, list[dict]]:
    if name in MADE:
        return _recipe(name, directory), MADE[name]["problems"]
    return CORPUS / name, CASES[name]


def test_every_case_is_listed_and_the_corpus_is_large_enough():
    on_disk = {p.name for p in CORPUS.iterdir()} - {"expected.yml"}
    assert on_disk == set(CASES)
    rejected = [name for name in _all_cases() if (CASES.get(name) or MADE.get(name, {}).get("problems"))]
    assert len(rejected) >= 60


@pytest.mark.parametrize("name", _all_cases())
def test_case(name, corpus_env):
    path, expected = _path_and_expected(name, corpus_env)
    _check_load_connections(path, expected)
    _check_cli(path, expected, corpus_env)


def _check_load_connections(path: Path, expected: list[dict]) -> None:
    """`validate_file` and `load_connections` (what the Dagster code location and every command call)."""
    # CPU time of this thread, not wall time: a busy machine must not fail the bound (the CLI check below
    # measures its child's CPU time the same way).
    started = time.thread_time()
    _, problems = validate_file(path)
    assert time.thread_time() - started < SECONDS
    assert [{"code": p.code, "line": p.line} for p in problems] == expected, [p.render() for p in problems]
    for problem in problems:
        assert problem.message and problem.hint
        assert MARKER not in problem.render() and MARKER not in json.dumps(problem.as_dict(), default=str)
    if not expected:
        assert load_connections(path).connections
        return
    with pytest.raises(ConfigError) as raised:
        load_connections(path)
    message = str(raised.value)
    assert MARKER not in message
    assert [{"code": p.code, "line": p.line} for p in raised.value.problems] == expected
    for problem in expected:
        assert f"[{problem['code']}]" in message


def _check_cli(path: Path, expected: list[dict], directory: Path) -> None:
    runner = CliRunner()
    human = runner.invoke(app, ["validate", "--config", str(path)])
    machine = runner.invoke(app, ["validate", "--json", "--config", str(path)])
    for result in (human, machine):
        assert result.exit_code == (1 if expected else 0), result.output
        assert isinstance(result.exception, SystemExit | None), result.exception
        assert "Traceback" not in result.output and MARKER not in result.output
    report = json.loads(machine.stdout)
    assert [{"code": p["code"], "line": p["line"]} for p in report["problems"]] == expected
    for problem in expected:
        where = f"{path}:{problem['line']}:" if problem["line"] else f"{path}:"
        assert f"{where} [{problem['code']}]" in human.output
    if expected:  # an accepted case would start a real sync: the controls stop at validate
        synced = runner.invoke(app, ["sync", "--config", str(path)])
        assert synced.exit_code == 1 and isinstance(synced.exception, SystemExit)
        assert "refusing to sync" in synced.output and MARKER not in synced.output
        assert "Traceback" not in synced.output
        assert not (directory / "data" / "warehouse.duckdb").exists()


# The child is started by a small intermediate Python: a process forked from pytest itself would report
# pytest's own (inherited) peak RSS as its max RSS.
_MEASURE = ("import json, resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
            "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "open(sys.argv[1], 'w').write(json.dumps([code, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))")


def _run_measured(args: list[str], directory: Path) -> tuple[int, str, float, float]:
    """(exit code, stdout+stderr, CPU seconds, max RSS MB) of one `canonry` child process."""
    report = directory / "usage.json"
    completed = subprocess.run([sys.executable, "-c", _MEASURE, str(report), str(CANONRY), *args],
                               capture_output=True, text=True, timeout=60)
    code, cpu_seconds, max_rss_kb = json.loads(report.read_text())
    return code, completed.stdout + completed.stderr, cpu_seconds, max_rss_kb / 1024


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_real_executable_on_a_sample(name, corpus_env):
    path = CORPUS / name
    expected = CASES[name]
    for args in SUBPROCESS_SAMPLE[name]:
        code, output, cpu_seconds, _ = _run_measured([*args, "--config", str(path)], corpus_env)
        assert code == 1, output
        assert cpu_seconds < SECONDS
        assert "Traceback" not in output and MARKER not in output
        for problem in expected:
            assert f"[{problem['code']}]" in output or f'"code": "{problem["code"]}"' in output, output


def test_alias_bomb_memory_and_time(corpus_env):
    code, output, cpu_seconds, max_rss_mb = _run_measured(["validate", "--config", str(CORPUS / "01_alias_bomb.yml")],
                                                          corpus_env)
    print(f"alias bomb: validate exit {code}, {cpu_seconds:.2f} s CPU, max RSS {max_rss_mb:.0f} MB")
    assert code == 1 and "[yaml_too_many_nodes]" in output
    assert max_rss_mb < ALIAS_BOMB_MAX_RSS_MB
    assert cpu_seconds < SECONDS


# Mutations of every committed case (a fixed seed: the same 400 files each run), inserting YAML's special
# tokens and broken bytes. Found the !!timestamp crash of PyYAML's constructor before PLAIN_TAGS existed.
MUTATION_TOKENS = (b"&a ", b"*a", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n", b"  ", b"!!int ", b"!!binary ",
                   b"? ", b"---\n", b"'", b'"', b"\\", b"\xff", b"%YAML 1.1\n", b"!!timestamp ", b"1e999", b"-1",
                   b"<<: ", b"~", b"!!set ", b"!!float ", b"0x", b"@", b"|\n", b">-\n", b"\t", b"#", b"!x ",
                   b"999999999999999999999", b"%TAG ! tag:x,2000:\n")


def test_mutated_files_are_problems_never_exceptions(corpus_env):
    import random

    rng = random.Random(17)
    seeds = [p.read_bytes() for p in sorted(CORPUS.glob("*.yml")) if p.is_file() and p.stat().st_size < 5000]
    path = corpus_env / "mutated.yml"
    for _ in range(400):
        mutated = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 5)):
            at = rng.randint(0, len(mutated))
            if rng.random() < 0.7:
                mutated[at:at] = rng.choice(MUTATION_TOKENS)
            else:
                del mutated[at:at + rng.randint(1, 5)]
        path.write_bytes(bytes(mutated))
        _, problems = validate_file(path)  # raises nothing, whatever the bytes
        for problem in problems:  # (a mutation may move a marker into a shown field: not checked here)
            assert problem.code and problem.code != "check_failed" and problem.hint, problem.render()
