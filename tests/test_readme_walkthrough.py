"""The README's "After the demo" commands, in order, as printed, on a fresh data dir after one small demo:
each must exit 0. The commands are read from the README (between the walkthrough markers), so the README
cannot drift from what works."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from canonry.warehouse import PROJECT_ROOT


def readme_commands() -> list[list[str]]:
    text = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README.md lost its walkthrough block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def test_readme_commands_work_after_the_demo(data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANONRY_DEMO_")}
    canonry = [sys.executable, "-m", "canonry.cli"]
    demo = subprocess.run([*canonry, "demo", "--scale", "10"], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "INFO" not in demo.stdout + demo.stderr  # third-party logging stays out of user output
    commands = readme_commands()
    assert [c[1] for c in commands][:6] == ["validate", "status", "sql", "replay", "trace", "push"]
    for command in commands:
        assert command[0] == ".venv/bin/canonry", command
        done = subprocess.run([*canonry, *command[1:]], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                              timeout=600)
        assert done.returncode == 0, f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}" \
                                     f"\n{done.stderr[-3000:]}"
