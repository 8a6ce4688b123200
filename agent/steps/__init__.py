"""What every panel's steps share: the step protocol, plans and actions (agent.steps.base),
panel API calls (agent.steps.api), the landing include (agent.steps.landing_include), the
HTTP landing check (agent.steps.probes) and archive verification (agent.steps.archive).
Each panel's steps live in its driver package (agent/drivers/<panel>/)."""
