"""landing_page on a cPanel server with ea-nginx in front (review F5), through the engine
against the fake server: the account's NGINX cache is turned off while the landing page is
on and its own setting comes back byte for byte; the NGINX finish runs after Apache's;
standalone NGINX is refused before anything changes. The real NGINX in front of the
simulator is tests/test_cpanel_nginx.py."""

from __future__ import annotations

from tests.fast.test_cpanel_ladder import Cp, cp  # noqa: F401 - the fixture

SHIPPED = b'{\n   "enabled" : true,\n   "zone_size" : "10m"\n}\n'
GLOBAL = "/etc/nginx/ea-nginx/cache.json"
USER = "/var/cpanel/userdata/alice/nginx-cache.json"
EA = "/usr/local/cpanel/scripts/ea-nginx"


def _ran(cp: Cp) -> list[list[str]]:  # noqa: F811
    return [a for a in cp.fake.log if a[0] in (EA, "/usr/local/cpanel/scripts/restartsrv_nginx",
                                               "/usr/local/cpanel/scripts/restartsrv_httpd")]


def test_the_cache_is_off_while_suspended_and_the_file_goes_away_after(cp: Cp) -> None:  # noqa: F811
    cp.fake.put(GLOBAL, SHIPPED)
    out = cp.suspend("cp-web")
    assert out.errors == [], out.errors
    assert cp.fake.files[USER].data == b'{\n   "enabled" : false\n}\n'
    # Apache restarted with the include first; then NGINX: conf, one reload, the cache.
    assert _ran(cp) == [["/usr/local/cpanel/scripts/restartsrv_httpd"],
                        [EA, "config", "alice", "--no-reload"],
                        ["/usr/local/cpanel/scripts/restartsrv_nginx", "reload"],
                        [EA, "clear_cache", "alice"]]
    cp.fake.log.clear()
    back = cp.unsuspend()
    assert back.errors == [] and back.state == "active", back.errors
    assert USER not in cp.fake.files
    assert [a[1] for a in _ran(cp) if a[0] == EA] == ["config", "clear_cache"]


def test_the_accounts_own_setting_comes_back_byte_for_byte(cp: Cp) -> None:  # noqa: F811
    cp.fake.put(GLOBAL, SHIPPED)
    own = b'{"x_cache_header":true,"enabled":true}'  # not in ea-nginx's own layout
    cp.fake.put(USER, own, mode=0o600)
    assert cp.suspend("cp-web").errors == []
    assert cp.fake.files[USER].data == (
        b'{\n   "enabled" : false,\n   "x_cache_header" : true\n}\n')
    assert cp.unsuspend().errors == []
    assert (cp.fake.files[USER].data, cp.fake.files[USER].mode) == (own, 0o600)


def test_a_file_ea_nginx_cannot_read_is_replaced_while_suspended_and_put_back(cp: Cp) -> None:  # noqa: F811
    cp.fake.put(GLOBAL, SHIPPED)
    cp.fake.put(USER, b"[not json")
    assert cp.suspend("cp-web").errors == []
    assert cp.fake.files[USER].data == b'{\n   "enabled" : false\n}\n'
    assert cp.unsuspend().errors == []
    assert cp.fake.files[USER].data == b"[not json"


def test_without_ea_nginx_nothing_of_it_is_written_or_run(cp: Cp) -> None:  # noqa: F811
    assert cp.suspend("cp-web").errors == []
    assert USER not in cp.fake.files
    assert not [a for a in cp.fake.log if a[0] == EA]


def test_standalone_nginx_is_refused_and_nothing_changes(cp: Cp) -> None:  # noqa: F811
    cp.fake.put(GLOBAL, SHIPPED)
    cp.fake.put("/etc/nginx/ea-nginx/enable.standalone", b"")
    before = dict(cp.fake.files)
    out = cp.suspend("cp-web")
    assert out.errors and "standalone" in " ".join(map(str, out.errors))
    # The backup ran before it and stays (with the case's record); landing_page wrote none
    # of its files.
    assert not [p for p in cp.fake.files if p not in before and (
        "landing" in p or "userdata" in p or "nginx" in p)]
    assert not cp.fake.loaded


def test_a_batch_reloads_nginx_once_after_apache_and_clears_every_account() -> None:
    from agent.drivers.cpanel import ea_nginx
    from agent.drivers.cpanel.settings import CpanelSettings
    from agent.steps.actions import Run
    from agent.steps.protocol import Plan
    from agent.steps.together import merge_finish

    s = CpanelSettings()
    plans = [Plan("landing_page", [], finish=[Run([s.rebuildhttpdconf]), Run([s.restartsrv_httpd]),
                                              ea_nginx.refresh(s, user)])
             for user in ("a1", "a2", "a3")]
    lines = [line for action in merge_finish(plans) for line in action.describe()]
    assert lines == [f"run   {s.rebuildhttpdconf}", f"run   {s.restartsrv_httpd}",
                     f"run   {EA} config a1 --no-reload", f"run   {EA} config a2 --no-reload",
                     f"run   {EA} config a3 --no-reload",
                     "run   /usr/local/cpanel/scripts/restartsrv_nginx reload",
                     f"run   {EA} clear_cache a1 a2 a3"]
