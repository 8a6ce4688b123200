"""Test hosts: Debian trees in network namespaces running real sshd, Apache and MariaDB."""
