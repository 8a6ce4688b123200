"""What every panel's steps share: the step protocol, its plans and context
(agent.steps.protocol), the actions plans are made of (agent.steps.actions), panel API
calls (agent.steps.api), the landing include (agent.steps.landing_include), the HTTP
landing check (agent.steps.probes) and archive verification (agent.steps.archive).
Each panel's steps live in its driver package (agent/drivers/<panel>/)."""
