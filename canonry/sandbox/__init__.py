"""Faithful local simulators of every provider, served over HTTP on 127.0.0.1.

Each provider's simulator is a sub-package (`canonry/sandbox/<slug>/`) that declares `SIMULATOR` (its class) and
`DEFAULT_TOKEN` (the sandbox-only credential it accepts by default). `SIMULATORS` and `DEFAULT_TOKENS` are found by
scanning those sub-packages on first use, so adding a provider edits no list here; the engine knows no provider,
and the CLI picks which one to serve.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from canonry.sandbox.engine import SandboxServer, SandboxState


@functools.cache
def _scan() -> tuple[dict[str, type], dict[str, str]]:
    simulators: dict[str, type] = {}
    tokens: dict[str, str] = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{module.name}")
        if not hasattr(package, "SIMULATOR"):
            continue
        if not isinstance(getattr(package, "DEFAULT_TOKEN", None), str):
            raise TypeError(f"{package.__file__}: a simulator package declares DEFAULT_TOKEN (a str) beside SIMULATOR")
        simulators[module.name] = package.SIMULATOR
        tokens[module.name] = package.DEFAULT_TOKEN
    return simulators, tokens


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): importing the engine or one simulator does not import the six others.
    if name == "SIMULATORS":
        return _scan()[0]
    if name == "DEFAULT_TOKENS":
        return _scan()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_simulator(slug: str, state: SandboxState, **options: Any):
    """Instantiate the simulator for a provider slug."""
    simulators = _scan()[0]
    if slug not in simulators:
        raise ValueError(f"unknown provider {slug!r}; sandboxes exist for: {', '.join(sorted(simulators))}")
    return simulators[slug](state, **options)


def start_sandbox(slug: str, *, seed: int = 7, scale: int = 200, token: str | None = None, port: int = 0,
                  rate_limits: bool = True, tls: bool = False, page_cache: bool = False,
                  **options: Any) -> SandboxServer:
    """Start a provider sandbox in a background thread; stop it with `.stop()` or a `with` block."""
    state = SandboxState(slug=slug, seed=seed, scale=scale, rate_limits=rate_limits, page_cache=page_cache)
    state.tokens.add(token or _scan()[1].get(slug, f"sandbox-{slug}-token"))
    simulator = build_simulator(slug, state, **options)
    return SandboxServer(simulator, state, port=port, tls=tls).start()
