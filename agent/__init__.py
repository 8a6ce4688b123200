"""suspension-agent: graded, reversible suspension of hosting accounts."""

from pathlib import Path

__version__ = "0.1.0"

# Data shipped beside the package in the source tree (editable installs and checkouts).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
