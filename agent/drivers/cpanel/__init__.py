"""The cpanel driver: cPanel & WHM servers, through whmapi1/uapi or the WHM API 1 over HTTPS.

Kept import-free: agent.config.servers imports `settings` from this package while it is
loading.
"""
