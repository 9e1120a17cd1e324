"""Faithful local simulators of every provider, served over HTTP on 127.0.0.1.

`SIMULATORS` maps a provider slug to the import path of its simulator class; the engine knows no
provider, and the CLI picks which one to serve.
"""

from __future__ import annotations

import importlib
from typing import Any

from canonry.sandbox.engine import SandboxServer, SandboxState

SIMULATORS: dict[str, str] = {
    "hubspot": "canonry.sandbox.hubspot:HubSpotSimulator",
    "lever": "canonry.sandbox.lever:LeverSimulator",
    "salesforce": "canonry.sandbox.salesforce:SalesforceSimulator",
    "pipedrive": "canonry.sandbox.pipedrive:PipedriveSimulator",
    "greenhouse": "canonry.sandbox.greenhouse:GreenhouseSimulator",
    "ashby": "canonry.sandbox.ashby:AshbySimulator",
    "workable": "canonry.sandbox.workable:WorkableSimulator",
}

DEFAULT_TOKENS: dict[str, str] = {
    # Sandbox-only credentials: they open nothing but a local simulator.
    "hubspot": "sandbox-hubspot-private-app-token",
    "lever": "sandbox-lever-api-key",
    "salesforce": "00D5g000004Canon!AQsandbox-salesforce-session-id",
    "pipedrive": "sandbox-pipedrive-api-token",
    # Greenhouse v3 uses client credentials: the stored secret is this JSON (auth.kind client_credentials).
    "greenhouse": '{"client_id": "canonry-greenhouse-client", "client_secret": "sandbox-greenhouse-client-secret", '
                  '"sub": "90000001"}',
    "ashby": "sandbox-ashby-api-key",
    "workable": "sandbox-workable-access-token",
}


def build_simulator(slug: str, state: SandboxState, **options: Any):
    """Instantiate the simulator for a provider slug."""
    if slug not in SIMULATORS:
        raise ValueError(f"unknown provider {slug!r}; sandboxes exist for: {', '.join(sorted(SIMULATORS))}")
    module_name, class_name = SIMULATORS[slug].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(state, **options)


def start_sandbox(slug: str, *, seed: int = 7, scale: int = 200, token: str | None = None, port: int = 0,
                  rate_limits: bool = True, tls: bool = False, page_cache: bool = False,
                  **options: Any) -> SandboxServer:
    """Start a provider sandbox in a background thread; stop it with `.stop()` or a `with` block."""
    state = SandboxState(slug=slug, seed=seed, scale=scale, rate_limits=rate_limits, page_cache=page_cache)
    state.tokens.add(token or DEFAULT_TOKENS.get(slug, f"sandbox-{slug}-token"))
    simulator = build_simulator(slug, state, **options)
    return SandboxServer(simulator, state, port=port, tls=tls).start()
