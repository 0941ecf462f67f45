"""The platform layer: settings access, Redis (client, key names), metrics, logging context,
base errors and the admin's base classes. The apps (audit, actions, orchestrator) use it; it
uses none of them (make lint checks the contract in pyproject.toml)."""
