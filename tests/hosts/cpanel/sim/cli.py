"""Command lines inside the host: whmapi1, uapi (panels.md A3) and the /scripts (A7, A8, A11,
A12). Each installed command is a two-line wrapper calling main(NAME, argv)."""

from __future__ import annotations

import json
import os
import sys

from . import db, ftp, nginx, pkgacct, store, suspend, tokens, uapi, web, whm, yamlish


def _kv(words: list[str]) -> dict[str, str] | None:
    args: dict[str, str] = {}
    for word in words:
        if "=" not in word:
            return None
        key, value = word.split("=", 1)
        args[key] = value
    return args


def _emit(reply: dict, output: str) -> None:
    if output == "json":
        print(json.dumps(reply, ensure_ascii=False))
    elif output == "jsonpretty":
        print(json.dumps(reply, ensure_ascii=False, indent=3))
    else:
        # Default YAML (A3), from the simulator's small emitter: fields and values as JSON.
        sys.stdout.write(yamlish.dump(reply))


def _output(words: list[str]) -> tuple[str, list[str]] | None:
    output, rest = "yaml", []
    for word in words:
        if word.startswith("--output="):
            output = word.split("=", 1)[1]
            if output not in ("json", "jsonpretty", "yaml"):
                return None
        else:
            rest.append(word)
    return output, rest


def whmapi1(words: list[str]) -> int:
    """whmapi1 [--output=json|jsonpretty|yaml] FUNCTION key=value ... (runs as root)."""
    parsed = _output(words)
    if parsed is None or not parsed[1]:
        print("usage: whmapi1 [--output=json|jsonpretty|yaml] FUNCTION key=value ...",
              file=sys.stderr)
        return 2
    output, rest = parsed
    args = _kv(rest[1:])
    if args is None:
        print("whmapi1: arguments must be key=value", file=sys.stderr)
        return 2
    _emit(whm.call(rest[0], args), output)
    return 0


def uapi_cli(words: list[str]) -> int:
    """uapi [--output=...] --user=USER Module function key=value ..."""
    parsed = _output(words)
    user = next((w.split("=", 1)[1] for w in words if w.startswith("--user=")), None)
    rest = [w for w in (parsed[1] if parsed else []) if not w.startswith("--user=")]
    args = _kv(rest[2:]) if len(rest) >= 2 else None
    if parsed is None or not user or args is None:
        print("usage: uapi [--output=json] --user=USER Module function key=value ...",
              file=sys.stderr)
        return 2
    result = uapi.call(user.lower(), rest[0], rest[1], args)
    _emit({"apiversion": 3, "func": rest[1], "module": rest[0], "result": result},
          parsed[0])
    return 0


def _script(name: str, words: list[str]) -> int:
    store.log_script(name)
    if name == "ea-nginx":
        return nginx.main(words)
    if name == "restartsrv_nginx":
        code, text = nginx.reload()
        print(text, end="", file=sys.stderr if code else sys.stdout)
        return code
    flags = {w for w in words if w.startswith("--")}
    plain = [w for w in words if not w.startswith("--")]
    if name == "rebuildhttpdconf":
        text = web.rebuild()
        if "--preview" in flags:
            print(text)
        print(f"Built {web.HTTPD_CONF} OK")
        return 0
    if name == "restartsrv_httpd":
        code, text = web.restart()
        print(text, file=sys.stderr if code else sys.stdout)
        return code
    if not plain:
        print(f"usage: {name} USER ...", file=sys.stderr)
        return 2
    user = plain[0].lower()
    if name == "suspendacct":
        reason = plain[1] if len(plain) > 1 else ""
        disallow = len(plain) > 2 and plain[2] == "1"
        with store.locked():
            code, text = suspend.suspendacct(user, reason, disallow,
                                             "--leave-ftp-accts-enabled" in flags,
                                             "--force" in flags)
    elif name == "unsuspendacct":
        with store.locked():
            code, text = suspend.unsuspendacct(user, "--retain-service-proxies" in flags)
    elif name in ("suspendmysqlusers", "unsuspendmysqlusers") and len(plain) > 1:
        # The team mode, `OWNER_TEAMUSER 1` (scripts/suspendmysqlusers:38-60).
        changed = [user] if db.set_locked_one(user, name == "suspendmysqlusers") else []
        code, text = 0, "".join(f"{name}: {n}\n" for n in changed)
    elif name in ("suspendmysqlusers", "unsuspendmysqlusers"):
        changed = db.set_locked(user, name == "suspendmysqlusers")
        code, text = 0, "".join(f"{name}: {n}\n" for n in changed)
    elif name == "pkgacct":
        dest = plain[1] if len(plain) > 1 else "/home"
        code, text = pkgacct.pkgacct(user, dest)
    else:
        print(f"{name}: unknown script", file=sys.stderr)
        return 2
    print(text, end="", file=sys.stderr if code else sys.stdout)
    return code


SCRIPTS = {"rebuildhttpdconf", "restartsrv_httpd", "suspendacct", "unsuspendacct",
           "suspendmysqlusers", "unsuspendmysqlusers", "pkgacct", "ea-nginx", "restartsrv_nginx"}


def pureauth() -> int:
    """pure-authd's program: reads AUTHD_ACCOUNT/AUTHD_PASSWORD, answers auth_ok lines."""
    found = ftp.authenticate(os.environ.get("AUTHD_ACCOUNT", ""),
                             os.environ.get("AUTHD_PASSWORD", ""))
    if found is None:
        print("auth_ok:-1\nend")
    else:
        print(f"auth_ok:1\nuid:{found['uid']}\ngid:{found['gid']}\ndir:{found['dir']}\nend")
    return 0


def main(name: str, words: list[str]) -> int:
    """Run the installed command `name` with `words`; return its exit code."""
    if name == "whmapi1":
        return whmapi1(words)
    if name == "uapi":
        return uapi_cli(words)
    if name == "pureauth":
        return pureauth()
    if name == "ftpupdate":
        store.log_script(name)  # counted like /scripts/NAME (tests count one per batch)
        ftp.ftpupdate()  # every account's /etc/proftpd/USER rebuilt (review F1)
        return 0
    if name == "pkgacct-session":
        return pkgacct.run_session(*words[:3])
    if name == "sim-token":
        # sim-token USER NAME [ACL...]: print a new token (tests' way to get one).
        token, _entry = tokens.create(words[0], words[1], words[2:] or ["all"])
        print(token)
        return 0
    if name in SCRIPTS:
        injected = store.fault(name)
        if injected and injected.get("mode") == "noop":
            return 0
        if injected and injected.get("mode") == "fail":
            print(injected.get("message", f"{name} failed (injected)"), file=sys.stderr)
            return int(injected.get("exit", 1))
        return _script(name, words)
    print(f"cpsim: unknown command {name}", file=sys.stderr)
    return 2
