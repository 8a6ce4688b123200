"""What the admin writes, validated once and passed in explicitly: config (the top level
and its loader), servers (`servers:`), playbooks, resellers (trees declared in config),
callers (what each forced-command caller may do) and validate (the small validator they
all use, which collects every problem with its path).

Kept import-free: a driver's settings module imports `validate` from this package while
agent.config.servers is loading it.
"""
