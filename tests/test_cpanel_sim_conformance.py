"""Conformance: every reply of the cPanel simulator, over the command line and over HTTPS,
has the field names and JSON types the documentation gives (the SHAPES table, each entry
citing its section of /work/shared/reference/panels.md), so the simulator cannot drift.

A shape is a JSON type (str, int, bool, list, dict, type(None)), a tuple of alternatives,
a dict of field -> shape (the documented fields must be there; more are allowed, as A5's
"…" says, except in the envelopes, whose keys are exact), or a one-item list [shape]
(a list whose every item has that shape).
"""

from __future__ import annotations

import pytest

from tests.hosts.cpanel import calls
from tests.hosts.cpanel.calls import api, uapi, whmapi1

# One worker runs the whole module, so its cPanel host is brought up once (tests/run.sh).
pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("cpanel-sim-conformance")]

NULL = type(None)
# A2: WHM API 1 envelope metadata (output.raw only where a script ran).
METADATA = {"command": str, "reason": str, "result": int, "version": int}
METADATA_RAW = {**METADATA, "output": {"raw": str}}
# A5: accountsummary / listaccts record.
ACCOUNT = {"user": str, "domain": str, "owner": str, "plan": str, "ip": str, "shell": str,
           "suspended": int, "suspendreason": (str, NULL), "suspendtime": (int, NULL),
           "is_locked": int, "outgoing_mail_suspended": int, "outgoing_mail_hold": int,
           "partition": str, "uid": int, "startdate": str, "unix_startdate": int,
           "email": str, "diskused": str, "disklimit": str, "maxpop": str, "maxsql": str,
           "maxftp": str}
# A2: UAPI result object; A1: the same object in WHM's data.uapi.
UAPI_RESULT = {"data": (list, dict, int, str, NULL), "errors": (list, NULL),
               "messages": (list, NULL), "metadata": dict, "status": int,
               "warnings": (list, NULL)}

# function -> (arguments, shape of `data` (None: no data key), metadata shape, section)
WHM_SHAPES = {
    "accountsummary": ({"user": "alice"}, {"acct": [ACCOUNT]}, METADATA, "A5"),
    "listaccts": ({"searchtype": "owner", "search": "res1", "searchmethod": "exact"},
                  {"acct": [ACCOUNT]}, METADATA, "A5"),
    "listsuspended": ({}, {"account": [{"user": str, "owner": str, "reason": str,
                                        "time": str, "unixtime": int, "is_locked": int}]},
                      METADATA, "A4/A5"),
    "listlockedaccounts": ({}, {"account": [str]}, METADATA, "A4"),
    "listresellers": ({}, {"reseller": [str]}, METADATA, "A5"),
    "suspendacct": ({"user": "bob", "reason": "conformance"}, None, METADATA_RAW, "A4/A8"),
    "unsuspendacct": ({"user": "bob"}, None, METADATA_RAW, "A4/A8"),
    "suspend_outgoing_email": ({"user": "bob"}, None, METADATA, "A4"),
    "unsuspend_outgoing_email": ({"user": "bob"}, None, METADATA, "A4"),
    "hold_outgoing_email": ({"user": "bob"}, None, METADATA, "A4"),
    "release_outgoing_email": ({"user": "bob"}, None, METADATA, "A4"),
    "suspendreseller": ({"user": "res1"}, None, METADATA_RAW, "A4/A9"),
    "unsuspendreseller": ({"user": "res1"}, None, METADATA_RAW, "A4/A9"),
    "start_background_pkgacct": ({"user": "bob"}, {"session_id": str}, METADATA, "A11"),
    "uapi_cpanel": ({"cpanel.user": "alice", "cpanel.module": "Email",
                     "cpanel.function": "list_pops"}, {"uapi": UAPI_RESULT}, METADATA, "A1"),
    "version": ({}, {"version": str}, METADATA, "A2"),
    # start_background_pkgacct's op page and get_pkgacct_session_state /
    # fetch_pkgacct_master_log (api.docs.cpanel.net, cited in sim/pkgacct.py; A11).
    "get_pkgacct_session_state": ({"session_id": "SESSION"}, {"state": str}, METADATA, "A11"),
    "fetch_pkgacct_master_log": ({"session_id": "SESSION"}, {"log": str}, METADATA, "A11"),
    # [3P] WHMCS's cPanel module reads data.privileges[0].all.
    "myprivs": ({}, {"privileges": [{"all": int}]}, METADATA, "A1 tokens, [3P]"),
}
# Module::function -> (arguments, shape of result.data, section); A2 gives the wrapper.
UAPI_SHAPES = {
    "Email::list_pops": ({}, [{"email": str, "login": str, "suspended_login": int,
                               "suspended_incoming": int}], "A6 (names [INF])"),
    "Email::suspend_login": ({"email": "info@alice.test"}, NULL, "A6"),
    "Email::unsuspend_login": ({"email": "info@alice.test"}, NULL, "A6"),
    "Email::suspend_incoming": ({"email": "info@alice.test"}, NULL, "A6"),
    "Email::unsuspend_incoming": ({"email": "info@alice.test"}, int, "A6"),
    "Email::suspend_outgoing": ({"email": "info@alice.test"}, int, "A6"),
    "Email::unsuspend_outgoing": ({"email": "info@alice.test"}, int, "A6"),
    "Email::hold_outgoing": ({"email": "info@alice.test"}, (int, NULL), "A6"),
    "Email::release_outgoing": ({"email": "info@alice.test"}, (int, NULL), "A6"),
    "Mysql::list_users": ({}, [{"user": str, "shortuser": str, "databases": [str]}], "A6"),
    "Mysql::list_databases": ({}, [{"database": str, "users": [str], "disk_usage": int}],
                              "A6 (names [INF])"),
    "Ftp::list_ftp": ({}, [{"user": str, "type": str, "homedir": str}], "A6"),
}
UAPI_WRAPPER = {"apiversion": int, "func": str, "module": str, "result": UAPI_RESULT}

# Set before a function runs (so it has something to do) and undone after it, so that the
# order of the parametrized tests does not matter.
BEFORE = {"unsuspendacct": ("suspendacct", {"user": "bob"}),
          "unsuspendreseller": ("suspendreseller", {"user": "res1"})}
AFTER = {"suspendacct": ("unsuspendacct", {"user": "bob"}),
         "suspendreseller": ("unsuspendreseller", {"user": "res1"}),
         "suspend_outgoing_email": ("unsuspend_outgoing_email", {"user": "bob"}),
         "hold_outgoing_email": ("release_outgoing_email", {"user": "bob"})}

# A module-wide cPanel host (host index offset 23); the shapes are read from one state.
cp, _reset_after_each = calls.fixtures(offset=23)


@pytest.fixture
def active(cp):
    """The host as provisioned: nobody suspended (a suspended account lists no FTP login)."""
    calls.reset(cp[0])
    return cp[0]


@pytest.fixture
def host(cp):
    """The host with something in every list: alice suspended and locked (only root may
    lift it; unsuspendreseller lifts it too, A9)."""
    if not whmapi1(cp[0], "listlockedaccounts")["data"]["account"]:
        whmapi1(cp[0], "suspendacct", user="alice", disallowun="1")
    return cp[0]


def mismatches(value, shape, where="reply", exact=False):
    """Return every place where `value` differs from `shape` (empty: it conforms)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, documented object"]
        found = [f"{where}.{k}: missing" for k in shape if k not in value]
        if exact:
            found += [f"{where}.{k}: not documented" for k in value if k not in shape]
        for key, sub in shape.items():
            if key in value:
                found += mismatches(value[key], sub, f"{where}.{key}", exact)
        return found
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, documented list"]
        if not value:
            return [f"{where}: empty, nothing to check"]
        return [m for i, item in enumerate(value)
                for m in mismatches(item, shape[0], f"{where}[{i}]")]
    alternatives = shape if isinstance(shape, tuple) else (shape,)
    for alt in alternatives:
        if isinstance(alt, (dict, list)) and not mismatches(value, alt, where):
            return []
        # bool is an int in Python, never in cPanel's JSON (A2: booleans are 1/0).
        if isinstance(alt, type) and isinstance(value, alt) and not (
                isinstance(value, bool) and alt is int):
            return []
    return [f"{where}: {type(value).__name__} {value!r:.40}, documented {shape}"]


def whm_reply_mismatches(reply, function, data_shape, meta_shape):
    expected_top = {"metadata"} | ({"data"} if data_shape is not None else set())
    found = [] if set(reply) == expected_top else [f"top keys {sorted(reply)}"]
    found += mismatches(reply.get("metadata"), meta_shape, "metadata", exact=True)
    if reply.get("metadata", {}).get("command") != function:
        found.append(f"metadata.command {reply['metadata'].get('command')!r}")
    if data_shape is not None:
        found += mismatches(reply.get("data"), data_shape, "data")
    return found


@pytest.mark.parametrize("function", sorted(WHM_SHAPES))
@pytest.mark.parametrize("transport", ["cli", "https"])
def test_whm_reply_has_the_documented_shape(host, cp, function, transport):
    args, data_shape, meta_shape, section = WHM_SHAPES[function]
    if "SESSION" in args.values():
        session = whmapi1(host, "start_background_pkgacct", user="bob")["data"]["session_id"]
        args = {k: session if v == "SESSION" else v for k, v in args.items()}
    if function in BEFORE:
        whmapi1(host, BEFORE[function][0], **BEFORE[function][1])
    try:
        if transport == "cli":
            reply = whmapi1(host, function, **args)
        else:
            reply = api(host, cp[1].root_token, function, **args).json()
    finally:
        if function in AFTER:
            whmapi1(host, AFTER[function][0], **AFTER[function][1])
    assert reply["metadata"]["result"] == 1, reply
    problems = whm_reply_mismatches(reply, function, data_shape, meta_shape)
    assert not problems, f"{function} ({section}, {transport}): {problems}"


@pytest.mark.parametrize("name", sorted(UAPI_SHAPES))
def test_uapi_reply_has_the_documented_shape(active, name):
    host = active
    args, data_shape, section = UAPI_SHAPES[name]
    module, function = name.split("::")
    reply = uapi(host, "alice", module, function, **args)
    if function.startswith(("suspend_", "hold_")):
        uapi(host, "alice", module, function.replace("suspend_", "unsuspend_")
             .replace("hold_", "release_"), **args)
    problems = mismatches(reply, UAPI_WRAPPER, exact=False)
    problems += mismatches(reply["result"], UAPI_RESULT, "result", exact=True)
    problems += mismatches(reply["result"]["data"], data_shape, "result.data")
    assert (reply["func"], reply["module"], reply["result"]["status"]) == (function, module, 1)
    assert not problems, f"{name} ({section}): {problems}"


def test_failures_have_the_documented_shape(host, cp):
    # A2: errors are result 0 with a reason, same envelope; UAPI errors a list of text.
    for reply in (whmapi1(host, "accountsummary", user="nosuchuser"),
                  api(host, cp[1].root_token, "accountsummary", user="nosuchuser").json()):
        assert not whm_reply_mismatches(reply, "accountsummary", None, METADATA)
        assert reply["metadata"]["result"] == 0
    bad = uapi(host, "alice", "Email", "suspend_login", email="nobody@alice.test")["result"]
    assert not mismatches(bad, UAPI_RESULT, "result", exact=True)
    assert bad["status"] == 0 and all(isinstance(e, str) for e in bad["errors"])
