"""A test host laid out as a cPanel server, with a cPanel simulator (issue 10, part 3).

Bring one up:
    host = TestHost("cpNN", index).up()
    cp = tests.hosts.cpanel.provision.provision_cpanel(host)   # cp.root_token: WHM token
or, in a test module, `cp, host = tests.hosts.cpanel.calls.fixtures(offset=N)`.

Inside the host (all Python, tests/hosts/cpanel/sim/ copied to /usr/local/cpanel/sim/cpsim):
    /usr/local/cpanel/bin/whmapi1 (= /usr/sbin/whmapi1) [--output=json|jsonpretty|yaml] F k=v
    /usr/local/cpanel/bin/uapi (= /usr/bin/uapi) [--output=json] --user=U Module function k=v
    /usr/local/cpanel/scripts/ (= /scripts/): pkgacct, rebuildhttpdconf, restartsrv_httpd,
        suspendacct, unsuspendacct, suspendmysqlusers, unsuspendmysqlusers, ftpupdate
    https://ADDRESS:2087/json-api/FUNCTION?api.version=1  `Authorization: whm USER:TOKEN`
        (bad or missing token: HTTP 403); tokens in
        /var/cpanel/authn/api_tokens_v2/whostmgr/USER.json, made by
        services.create_token(host, user, name, acls) or `/usr/local/cpanel/sim/bin/sim-token
        USER NAME [ACL...]`, or WHM api_token_create
    /var/cpanel/sim/faults.json  {"NAME": {"mode": "noop"|"fail"|"hang", "seconds": N,
        "exit": N, "message": TEXT, "times": N}}; NAME is a WHM function, `Module::function`
        or a script name (pkgacct also for background sessions); services.set_faults(host, d)

Accounts, domains, mailboxes, databases, FTP logins and passwords: layout.py. Reseller
trees (sub-resellers owning accounts, owner chains) on a running host:
resellers.add_accounts(host, [resellers.account("sub1", "res1", reseller=True), ...]).
"""
