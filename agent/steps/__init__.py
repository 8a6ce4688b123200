"""The step registry: playbook step names to implementations."""

from __future__ import annotations

from agent.steps.backup import Backup
from agent.steps.base import Step
from agent.steps.db_lock import DbLock
from agent.steps.ftp_lock import FtpLock
from agent.steps.landing_page import LandingPage
from agent.steps.mail_block import MailBlock
from agent.steps.panel_lock import PanelLock

REGISTRY: dict[str, Step] = {step.name: step for step in (
    Backup(), LandingPage(), MailBlock(), FtpLock(), DbLock(), PanelLock())}


def get(name: str) -> Step:
    """Return the implementation of step `name` (must be available; see agent.drivers)."""
    return REGISTRY[name]
