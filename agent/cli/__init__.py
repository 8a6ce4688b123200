"""Command line (click): the group and helpers (base), the verbs (verbs), the admin's verbs
(admin), the SSH forced command's words (forced), and how replies are rendered (render).
Importing this package registers every verb; `main` is the console script's entry point."""

from agent.cli import admin, evidence, verbs  # noqa: F401 - they register their verbs on `cli`
from agent.cli.base import (
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_REMAINS,
    EXIT_USAGE,
    TEST_NOW_ENV,
    cli,
    main,
)

__all__ = ["EXIT_BUSY", "EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "EXIT_PARTIAL",
           "EXIT_REMAINS", "EXIT_USAGE", "TEST_NOW_ENV", "cli", "main"]
