"""Pure checks: identifiers, config and playbook validation, rendering, vhost parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from agent import PROJECT_ROOT, drivers, ids, landing
from agent.config import playbooks
from agent.config.config import Branding, parse
from agent.drivers.linux import parse_vhosts
from agent.errors import BadInput, ConfigError


@pytest.mark.parametrize("name", ["alice;id", "$(x)", "a b", "../a", "", "a" * 33, "Ab", "-a"])
def test_bad_account_names(name):
    with pytest.raises(BadInput):
        ids.account(name, "linux")


def test_panel_rules_differ():
    assert ids.account("web.user1", "cpanel") == "web.user1"
    with pytest.raises(BadInput):
        ids.account("web.user1", "directadmin")
    with pytest.raises(BadInput):
        ids.account("a" * 17, "cpanel")


def test_shipped_playbooks_validate_and_registry_matches_schema():
    for path in Path(PROJECT_ROOT, "playbooks").glob("*.yaml"):
        pb = playbooks.load(str(path.parent), path.stem)
        assert pb.stages[0].steps[0].name == "backup"
    linux = drivers.driver("linux")
    # The server steps a whole-server case implies (server_landing) are never named either.
    implied = set(playbooks.IMPLIED_SERVER_STEPS.values())
    assert set(linux.steps) - implied <= set(playbooks.STEP_PARAMS)
    assert implied <= set(linux.steps) and not implied & set(playbooks.STEP_PARAMS)
    assert drivers.step_names("linux") == sorted(linux.steps)
    assert all(drivers.step("linux", n) is linux.steps[n] for n in linux.steps)
    cpanel = drivers.driver("cpanel")
    # Its login step for reseller trees is applied by the engine, never named by a playbook.
    assert set(cpanel.steps) - {cpanel.login_step} <= set(playbooks.STEP_PARAMS)
    assert cpanel.login_step in cpanel.steps and cpanel.login_step not in playbooks.STEP_PARAMS
    assert drivers.step_names("cpanel") == sorted(cpanel.steps)
    assert drivers.driver("directadmin") is None and drivers.step_names("directadmin") == []


def test_playbook_problems_are_all_reported():
    doc = yaml.safe_load("""
stages:
  - after: 2h
    steps: [landing_page, {backup: {reuse_if_newer_than: soon}}]
  - after: 1h
    steps: [mail_blok, {mail_block: {incoming: bounce}}]
""")
    with pytest.raises(ConfigError) as err:
        playbooks.parse(doc, "x", "x.yaml")
    text = str(err.value)
    assert "stages[0].steps[0]: 'landing_page' restricts the account before any backup" in text
    assert "stages[0].steps[1].backup.reuse_if_newer_than: must be duration" in text
    assert "stages[1].after: stages must be in strictly increasing delay order" in text
    assert "unknown step 'mail_blok'" in text
    assert "stages[1].steps[1].mail_block.incoming: must be accept | reject | defer" in text


def test_config_errors_carry_paths(tmp_path):
    key = tmp_path / "key"
    key.write_text("k")
    os.chmod(key, 0o644)
    doc = {"servers": {"web1": {"panel": "plesk", "transport": "ssh", "host": "h",
                                "port": "22", "key_file": str(key),
                                "known_hosts": str(tmp_path / "nope")}},
           "branding": {"language": "it"}, "lock_wait_seconds": -1}
    with pytest.raises(ConfigError) as err:
        parse(doc, "c.yaml", tmp_path)
    text = str(err.value)
    for expected in ("servers.web1.panel: must be one of linux, cpanel, directadmin",
                     "servers.web1.port: must be an integer 1-65535",
                     "servers.web1.key_file:", "readable by others",
                     "servers.web1.known_hosts:", "branding.language: must be one of",
                     "lock_wait_seconds: must be an integer"):
        assert expected in text


def test_example_config_is_valid(tmp_path):
    text = (PROJECT_ROOT / "config.example.yaml").read_text()
    doc = yaml.safe_load(text)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "web1").write_text("k")
    os.chmod(tmp_path / "keys" / "web1", 0o600)
    (tmp_path / "known_hosts").write_text("")
    cfg = parse(doc, "example", tmp_path)
    assert cfg.servers["web1"].linux.apachectl == "/usr/sbin/apache2ctl"


@pytest.mark.parametrize("lang", ["en", "es", "pt", "nl", "de", "fr"])
def test_landing_page_escapes_values(lang):
    brand = Branding(company='<script>alert("x")</script> & Co',
                     contact_url='https://x.invalid/"onmouseover="a', language=lang)
    page = landing.render(str(PROJECT_ROOT / "landing_pages"), brand)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '"onmouseover="' not in page
    assert f'lang="{lang}"' in page and "${" not in page


def test_vhost_parser_takes_only_hooked_blocks():
    files = {"/s/a.conf": """<VirtualHost *:80>
  ServerName A.test
  ServerAlias www.a.test  x.a.test
  IncludeOptional /etc/apache2/suspension-agent/alice/*.conf
  DocumentRoot /home/alice/a
</VirtualHost>
<VirtualHost 10.0.0.1:443>
  ServerName a.test
  SSLEngine on
  IncludeOptional /etc/apache2/suspension-agent/alice/*.conf
</VirtualHost>
<VirtualHost *:80>
  ServerName other.test
  IncludeOptional /etc/apache2/suspension-agent/alicex/*.conf
</VirtualHost>"""}
    hosts = parse_vhosts(files, "/etc/apache2/suspension-agent/alice/")
    assert [(h.port, h.tls, h.names) for h in hosts] == [
        (80, False, ("a.test", "www.a.test", "x.a.test")), (443, True, ("a.test",))]


def test_forced_command_words():
    from agent.cli.forced import forced_args

    assert forced_args("suspend web1 alice --hold billing", None, False) == [
        "--json", "suspend", "web1", "alice", "--hold", "billing"]
    assert forced_args("suspension-agent --dry-run unsuspend web1 alice", "/c.yaml", False) == [
        "--config", "/c.yaml", "--json", "--dry-run", "unsuspend", "web1", "alice"]
    for bad in ("", "tick", "rm -rf /", "status --config=/etc/shadow", "suspend 'web1",
                "--dry-run", "--json status"):
        with pytest.raises(BadInput):
            forced_args(bad, None, False)
