"""landing_page on cPanel: every domain of the account answers 503 with the landing page.

Mechanism: EA4's userdata includes (reference/panels.md A12). The per-user include folders
`<userdata_dir>/std/<base>/<user>/` (HTTP) and `.../ssl/<base>/<user>/` (HTTPS), `<base>`
being the one the server uses (`2_4`, or `2` where only that exists: review F7), are
included by every vhost of the user, whatever the domain's kind: the main domain, its
subdomains, addon domains (their own vhosts) and parked domains (ServerAliases of the main
vhost). `suspension-agent.conf` goes into both, then `rebuildhttpdconf` puts the Include
lines into httpd.conf (it does not restart Apache, A12) and one `restartsrv_httpd` loads
it: both are the plan's finish, so a batch of accounts (a reseller's tree) rebuilds and
restarts once for all of them. The directives are the shared landing include
(agent.steps.landing_include): a vhost-level rewrite answers 503 before the site's
.htaccess runs, and before the Directory-level redirect cPanel's own suspension adds (A7
step 11), ACME challenges exempt. If rebuild or restart fails, the runner puts the files
back and rebuilds again from the undo data.
Every domain is then checked from outside over HTTP and HTTPS (agent.steps.probes).
With ea-nginx in front (review F5), the account's NGINX cache is turned off and emptied for
as long as the landing page is on: agent/drivers/cpanel/ea_nginx.py.
"""

from __future__ import annotations

from typing import Any

from agent import landing
from agent.drivers.cpanel import ea_nginx
from agent.drivers.cpanel.facts import Panel, account_name, all_domains
from agent.errors import VerifyFailed
from agent.steps.actions import FileState, Run, Write, carry_out, file_state, with_parents
from agent.steps.landing_include import HOOK_FILE, hook_conf, put_back
from agent.steps.protocol import Context, Plan, memo, read


def include_bases(ctx: Context) -> dict[str, list[str]]:
    """Return, for std (HTTP) and ssl (HTTPS), the include bases EA4's templates try in
    order: `<kind>/<apache_dir>/` (2_4), then `<kind>/2/`. The first that exists is the one
    every vhost of the server includes from (review F7: ea-apache2-config vhost.default's
    vhost_include_dir loop tests only these shared folders)."""
    s = ctx.server.cpanel
    return {kind: list(dict.fromkeys(f"{s.userdata_dir}/{kind}/{v}" for v in (s.apache_dir,
                                                                               "2")))
            for kind in ("std", "ssl")}


def include_paths(ctx: Context, found: dict[str, Any]) -> list[str]:
    """Return the account's two per-user include files, std then ssl, under the base the
    server uses now (`found`: a read of the bases). With no base there yet, the first one
    is made; a server that keeps its includes under `2/` gets ours there too, since
    creating `2_4/` would switch every vhost to it and leave out every `2/` include."""
    chosen = []
    for bases in include_bases(ctx).values():
        base = next((b for b in bases if found[b].exists), bases[0])
        chosen.append(f"{base}/{ctx.account}/{HOOK_FILE}")
    return chosen


def _rebuild(ctx: Context, nginx: bool) -> list:
    # The finish of the step: a batch of accounts writes (or removes) every include, then
    # httpd.conf is rebuilt and Apache restarted once for all of them. rebuildhttpdconf
    # refuses (non-zero) a configuration that does not build; the restart comes after it.
    # With ea-nginx, its cache goes after Apache answers with the include: a page cached
    # before the restart would otherwise be served stale on the 503 (review F5).
    s = ctx.server.cpanel
    finish: list = [Run([s.rebuildhttpdconf], timeout=600), Run([s.restartsrv_httpd],
                                                                timeout=300)]
    if nginx:
        finish.append(ea_nginx.refresh(s, account_name(ctx.account)))
    return finish


class LandingPage:
    """Puts a cPanel account's websites behind the landing page and takes them out again."""

    name = "landing_page"
    # Its apply and revert carry out exactly their plans' actions, each account's on files
    # of its own (shared parent folders only with `install -d`): a batch carries out all
    # accounts' plans as one (agent/steps/together.py).
    together = True

    def plan_reads(self, ctx: Context) -> list[str]:
        """The folders and files `plan` reads (a batch reads every account's at once): the
        landing folder and page, and the include folders and files under every base."""
        landing_dir, page_path = _paths(ctx)
        includes = [f"{b}/{ctx.account}/{HOOK_FILE}" for bases in include_bases(ctx).values()
                    for b in bases]
        folders = [landing_dir] + [p.rsplit("/", 1)[0] for p in includes]
        nginx = ea_nginx.paths(ctx.server.cpanel, account_name(ctx.account)).values()
        return [*with_parents(folders), page_path, *includes, *nginx]

    def plan(self, ctx: Context) -> Plan:
        user = account_name(ctx.account)
        domains = _domains(ctx, user)
        names = all_domains(domains)
        landing_dir, page_path = _paths(ctx)
        page = landing.render(ctx.config.landing_pages_dir, ctx.branding,
                              ctx.params.get("language")).encode()
        conf = hook_conf(ctx.case_id, landing_dir, ctx.branding.retry_after).encode()
        # One read (or the batch's, held): the include base in use, which folders must be
        # made, and the files as they are (a path that is not a regular file is refused).
        found = read(ctx, self.plan_reads(ctx))
        includes = include_paths(ctx, found)
        wanted = with_parents([landing_dir] + [p.rsplit("/", 1)[0] for p in includes])
        made = [d for d in wanted if not found[d].exists]
        before = {p: file_state(found[p], ctx.server.name) for p in (page_path, *includes)}
        actions: list = [Run(["install", "-d", "-m", "755", d]) for d in made]
        actions.append(Write(before[page_path], FileState(page_path, True, page, 0o644, "0:0")))
        actions += [Write(before[p], FileState(p, True, conf, 0o644, "0:0")) for p in includes]
        where = ea_nginx.paths(ctx.server.cpanel, user)
        nginx = ea_nginx.present(found, where, ctx.server.name)
        if nginx:
            # Written before the includes' finish: the rebuilt NGINX conf reads it.
            now = file_state(found[where["user"]], ctx.server.name)
            off = ea_nginx.cache_off(found[where["user"]].data)
            before[where["user"]] = now
            if not (now.exists and now.data == off):
                actions.append(Write(now, FileState(where["user"], True, off, 0o644, "0:0")))
        probe = [[d, ctx.server.http_port, False] for d in names]
        probe += [[d, ctx.server.https_port, True] for d in names]
        return Plan(self.name, actions, facts={"domains": domains},
                    undo={"before": [st.to_dict() for st in before.values()],
                          "created_dirs": made, "includes": includes, "probe": probe,
                          **({"ea_nginx": where["user"]} if nginx else {})},
                    finish=_rebuild(ctx, nginx))

    def apply(self, ctx: Context, plan: Plan) -> dict[str, Any]:
        # A failed rebuildhttpdconf or restart leaves the files written: the runner reverts
        # at once from the undo data (files back, rebuild, restart) or marks it stuck.
        carry_out(ctx.conn, plan.actions)
        return plan.undo

    def revert_reads(self, undo: dict[str, Any]) -> list[str]:
        """The files and folders revert_plan reads (a batch reads every account's at once)."""
        return [st["path"] for st in undo["before"]] + list(undo["created_dirs"])

    def verify_reads(self, undo: dict[str, Any]) -> list[str]:
        """The include files verify reads, and with ea-nginx the account's caching file."""
        return list(undo["includes"]) + ([undo["ea_nginx"]] if "ea_nginx" in undo else [])

    def revert_plan(self, ctx: Context, undo: dict[str, Any]) -> Plan:
        actions, gone = put_back(read(ctx, self.revert_reads(undo)), ctx.server.name,
                                 undo["before"], undo["created_dirs"])
        # Rebuild and restart even when the files are already back: a run that died after
        # removing them left httpd.conf (and Apache) with the include. The folders go first
        # (a rebuild reads which include folders exist).
        return Plan(self.name, actions, undo=undo,
                    finish=([gone] if gone.paths else []) + _rebuild(ctx, "ea_nginx" in undo))

    def verify(self, ctx: Context, undo: dict[str, Any], suspended: bool) -> None:
        """Re-read the include files, then ask every domain over HTTP and HTTPS."""
        from agent.steps import probes  # the probe machinery loads only when a probe runs

        marker = f"# BEGIN SUSPENSION-AGENT case {ctx.case_id}\n".encode()
        found = read(ctx, self.verify_reads(undo))
        for path in undo["includes"]:
            there = found[path].exists and marker in (found[path].data or b"")
            if there != suspended:
                raise VerifyFailed(f"{path} {'lacks' if suspended else 'still holds'} the "
                                   f"landing include of case {ctx.case_id}")
        if suspended and "ea_nginx" in undo:
            cached = found[undo["ea_nginx"]]
            if not cached.exists or cached.data != ea_nginx.cache_off(cached.data):
                raise VerifyFailed(f"{undo['ea_nginx']} does not turn ea-nginx's cache off "
                                   "for the account: NGINX may serve cached pages")
        probes.check_landing(ctx.server, [tuple(t) for t in undo["probe"]], suspended)


def _paths(ctx: Context) -> tuple[str, str]:
    """Return the account's landing folder and its page."""
    landing_dir = f"{ctx.server.cpanel.landing_dir}/{account_name(ctx.account)}"
    return landing_dir, f"{landing_dir}/index.html"


def _domains(ctx: Context, user: str) -> dict[str, list[str]]:
    """The account's domains by kind: for a batch, from one get_domain_info for all its
    accounts; alone, or when that index lacks the account (its cache lags behind a new
    one), from the account's own DomainInfo::list_domains. The include covers every vhost
    of the user either way; the domains are what the probe asks."""
    panel = Panel(ctx.server, ctx.conn)
    if ctx.shared is not None:
        found = memo(ctx.shared, ("cpanel domain index",), panel.domain_index).get(user)
        if found is not None:
            return found
    return panel.domains(user)


