"""Connectors: the only code that starts processes or opens SSH connections."""

from agent.connector.base import Connector, Result, Stat, quote

__all__ = ["Connector", "Result", "Stat", "quote", "connect"]


def connect(server) -> Connector:  # noqa: ANN001 - agent.config.servers.Server, imported lazily
    """Return a connector for `server` (not yet connected; connects on first use)."""
    if server.transport == "local":
        from agent.connector.local import LocalConnector

        return LocalConnector(server)
    from agent.connector.ssh import SSHConnector

    return SSHConnector(server)
