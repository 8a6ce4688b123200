"""landing_page: every URL of every domain of the account answers 503 with the landing page.

Mechanism (linux driver): each vhost of the account carries, once, the line
`IncludeOptional <apache_hook_dir>/<account>/*.conf` before its own rewrite rules. This step
writes `suspension-agent.conf` into that folder: a vhost-level mod_rewrite rule answers 503
in the translate-name phase, before the site's `.htaccess` rules (which run later, in the
fixup phase) and before mod_alias redirects; ErrorDocument serves the rendered page from a
folder outside the docroot with AllowOverride None. ACME challenges are exempt.
"""

from __future__ import annotations

from typing import Any

from agent import landing
from agent.drivers import linux
from agent.drivers.linux import host_map
from agent.errors import StepError, VerifyFailed
from agent.steps.actions import FileState, Run, Write, carry_out, file_state, with_parents
from agent.steps.landing_include import HOOK_FILE, RemoveDirs, hook_conf
from agent.steps.map_edit import MapEdit
from agent.steps.protocol import Context, Plan, read

# The host map is one file for every account of the server: edited under this lock.
MAP_LOCK = "hostmap"


class LandingPage:
    """Puts an account's websites behind the landing page and takes them out again."""

    name = "landing_page"
    # Its apply and revert carry out exactly their plans' actions, each account's on files
    # of its own (shared parent folders only with `install -d`): a batch carries out all
    # accounts' plans as one (agent/steps/together.py).
    together = True

    def plan(self, ctx: Context) -> Plan:
        paths = ctx.server.linux
        hosts = linux.vhosts(ctx.conn, paths, ctx.account, ctx.shared)
        if not hosts:
            return self._no_site_plan(ctx)
        language = ctx.params.get("language")
        if language and language != ctx.branding.language:
            why, present = "the playbook asks for a language other than branding.language", None
        else:
            why, present = host_map.why_not(ctx.conn, paths, ctx.account, hosts, ctx.shared)
        targets = [(name, vh.port, vh.tls) for vh in hosts for name in vh.names]
        if why is None and present is not None:
            return self._map_plan(ctx, hosts, present, targets)
        return self._include_plan(ctx, hosts, targets, why)

    def _no_site_plan(self, ctx: Context) -> Plan:
        """An account no enabled vhost includes the hook of: nothing to do when no vhost
        looks like its own either (a mail-only customer, an admin login); a vhost that
        does (its home, its user) but lacks the include is refused, never left serving."""
        paths = ctx.server.linux
        home = linux.home(ctx.conn, paths, ctx.account)
        if found := linux.unhooked(ctx.conn, paths, ctx.account, home, ctx.shared):
            names = ", ".join(sorted({f"{vh.file} ({', '.join(vh.names) or 'no name'})"
                                      for vh in found}))
            raise StepError(
                f"no enabled vhost of {ctx.account!r} includes "
                f"{linux.hook_dir(paths, ctx.account)}/*.conf, but {names} serve(s) from its "
                "home or as its user; add that IncludeOptional line to each of the "
                "account's vhosts once")
        return Plan(self.name, [], facts={"domains": [], "vhosts": 0, "mechanism": "none"},
                    undo={"mode": "none", "home": home, "probe": []},
                    note=f"no website: no enabled vhost includes the hook folder of "
                         f"{ctx.account!r} or serves from {home}")

    def _map_plan(self, ctx: Context, hosts: list, present: set[str],
                  targets: list) -> Plan:
        """One edit of the host map, no reload: every site of the account is covered."""
        names = linux.domains(hosts)
        added = [n for n in names if n not in present]
        path = ctx.server.linux.host_map
        return Plan(self.name, [], facts={"domains": names, "vhosts": len(hosts),
                                          "mechanism": "host map"},
                    undo={"mode": "map", "map": path, "added": added, "probe": targets},
                    finish=[MapEdit(path, add=tuple(added))] if added else [],
                    finish_lock=MAP_LOCK, note="every domain is already in the host map")

    def _include_plan(self, ctx: Context, hosts: list, targets: list,
                      why: str | None) -> Plan:
        """The per-account include in each vhost's hook folder, then one graceful reload."""
        paths = ctx.server.linux
        hook_dir = linux.hook_dir(paths, ctx.account)
        landing_dir = f"{paths.landing_dir}/{ctx.account}"
        hook_path = f"{hook_dir}/{HOOK_FILE}"
        page_path = f"{landing_dir}/index.html"
        page = landing.render(ctx.config.landing_pages_dir, ctx.branding,
                              ctx.params.get("language")).encode()
        conf = hook_conf(ctx.case_id, landing_dir, ctx.branding.retry_after).encode()
        wanted = with_parents([landing_dir, hook_dir])
        # One read: which folders must be made, and the two files as they are (a path that
        # is not a regular file is refused).
        found = ctx.conn.read_many([*wanted, page_path, hook_path])
        parents = [d for d in wanted if not found[d].exists]
        before = {p: file_state(found[p], ctx.server.name) for p in (page_path, hook_path)}
        actions = [Run(["install", "-d", "-m", "755", d]) for d in parents]
        actions += [
            Write(before[page_path], FileState(page_path, True, page, 0o644, "0:0")),
            Write(before[hook_path], FileState(hook_path, True, conf, 0o644, "0:0")),
        ]
        # The reload is the finish: a batch of accounts writes every include, then Apache
        # is tested and reloaded once for all of them.
        return Plan(self.name, actions,
                    facts={"domains": linux.domains(hosts), "vhosts": len(hosts),
                           "mechanism": "include", "why not the host map": why},
                    undo={"before": [s.to_dict() for s in before.values()],
                          "created_dirs": parents, "probe": targets},
                    finish=_reload_actions(paths))

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        # A failing configtest leaves files written: the runner puts them back at once from
        # the undo data (or marks the change stuck), so no broken include waits for a reload.
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_reads(self, undo: dict[str, Any]) -> list[str]:
        """The files and folders an include revert reads (a batch reads all at once)."""
        if undo.get("mode") in ("map", "none"):
            return []
        return [d["path"] for d in undo["before"]] + list(undo["created_dirs"])

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        if undo.get("mode") == "none":
            return Plan(self.name, [], undo=undo, note="no website was put behind the page")
        if undo.get("mode") == "map":
            # The hot path with the host map: one read and one write, no reload.
            finish = [MapEdit(undo["map"], remove=tuple(undo["added"]))] if undo["added"] else []
            return Plan(self.name, [], undo=undo, finish=finish, finish_lock=MAP_LOCK)
        # The hot path of an unsuspend: one read (files and folders together), then one
        # batch (removals, rmdirs, configtest, graceful) when the files were created here.
        before = [FileState.from_dict(d) for d in undo["before"]]
        dirs = undo["created_dirs"]
        found = read(ctx, self.revert_reads(undo))
        current = {s.path: file_state(found[s.path], ctx.server.name) for s in before}
        # The include goes before the page (apply wrote them the other way round): a revert
        # stopped between the two leaves the full landing page up, never an include whose
        # ErrorDocument is gone (a bare 503).
        actions: list = [Write(current[s.path], s) for s in reversed(before)
                         if current[s.path] != s]
        # The folders go in the finish, after every account of a batch removed its files
        # (a shared parent is in the created_dirs of one account only).
        gone = RemoveDirs(tuple(d for d in dirs if found[d].exists))
        # Reload even when the files are already back: a run that died (or a graceful that
        # failed) after the removal left Apache serving the include it had loaded. The
        # journal only asks for this revert while the change is in effect or in flux.
        return Plan(self.name, actions, undo=undo,
                    finish=([gone] if gone.paths else []) + _reload_actions(ctx.server.linux))

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        if undo.get("mode") == "none":
            # Nothing was put up; while suspended, a website that appeared since (a vhost
            # of the account's, hooked or not) is not behind the page: that is a failure.
            if suspended and (linux.vhosts(ctx.conn, ctx.server.linux, ctx.account) or
                              linux.unhooked(ctx.conn, ctx.server.linux, ctx.account,
                                             undo["home"])):
                raise VerifyFailed(f"{ctx.account!r} has a website now, which is not behind "
                                   "the landing page")
            return
        from agent.steps import probes  # the probe machinery loads only when a probe runs

        probes.check_landing(ctx.server, [tuple(t) for t in undo["probe"]], suspended)


def _reload_actions(paths) -> list[Run]:  # noqa: ANN001 - LinuxPaths
    # configtest first: a broken include must never reach a running Apache.
    return [Run([paths.apachectl, "configtest"]), Run([paths.apachectl, "graceful"])]

