"""`--idempotency-key` at the CLI edge: a verb's call run at most once per caller and key,
its first reply replayed to every retry (agent/journal/idempotency.py has the rules).

The reply of a call made with a key says so: `"idempotency": {"key", "replayed", "first_at"}`
(first_at: when the key was first claimed), identical between the first reply and its
replays but for `replayed`, so a caller can always tell a replay from a fresh execution.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from agent.cli.base import Globals, _emit, _exit_for, _finish
from agent.cli.render import outcome_dict, outcome_text
from agent.engine.outcome import Outcome
from agent.errors import BadInput
from agent.journal.idempotency import Store, check_key, request_hash


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def finish_once(g: Globals, engine: Any, key: str | None, verb: str,
                request: dict[str, Any], call: Callable[[], Outcome]) -> None:
    """Run `call` and finish the CLI with its reply, at most once for `key` (None: no key,
    an ordinary call). `request`: the parsed request the key is bound to."""
    if key is None:
        _finish(g, call())
    check_key(key)
    if g.dry_run:
        raise BadInput("--idempotency-key with --dry-run: a dry run changes nothing and is "
                       "never kept; leave one of them out")
    store = Store(engine.journal.db)
    caller, now = engine.caller, engine.now()
    kept = store.claim(caller, key, request_hash(verb, request), now)
    if kept is not None:
        engine.audit("idempotency.replayed", server=request.get("server"),
                     kind=request.get("kind"), name=request.get("name"), key=key,
                     outcome="replayed", exit=kept.exit_code)
        stamp = {"key": key, "replayed": True, "first_at": _iso(kept.first_at)}
        _emit(g, kept.reply | {"idempotency": stamp},
              f"{kept.text}\n(replayed: the reply of the first call with idempotency key "
              f"{key}, {stamp['first_at']}; nothing was done again)", kept.exit_code)
        sys.exit(kept.exit_code)
    try:
        o = call()
    except BaseException:
        store.release(caller, key)  # nothing to keep: a retry runs the request again
        raise
    code = _exit_for(o)
    reply, text = outcome_dict(o), outcome_text(o, False)
    store.settle(caller, key, code, reply, text, engine.now(),
                 engine.config.idempotency_retention)
    stamp = {"key": key, "replayed": False, "first_at": _iso(store.first_at(caller, key) or now)}
    _emit(g, reply | {"idempotency": stamp}, text, code)
    sys.exit(code)
