"""The step registry: playbook step names to implementations."""

from __future__ import annotations

from agent.steps.backup import Backup
from agent.steps.base import Step
from agent.steps.landing_page import LandingPage

REGISTRY: dict[str, Step] = {"backup": Backup(), "landing_page": LandingPage()}


def get(name: str) -> Step:
    """Return the implementation of step `name` (must be available; see agent.drivers)."""
    return REGISTRY[name]
