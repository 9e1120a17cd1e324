"""Rollout discipline (docs/ROLLOUTS.md): pause and resume connections, build the current checkout's
canonical lineage into a shadow schema and diff it against `canonical`, promote it (for every connection or
a canary subset) or roll back, each recording the code version that built each canonical table."""
