"""The use cases of sedis, each whole, written only against interfaces.

Every use case takes the process's ``Engines`` (shared, thread-safe), the
``Actor`` it acts for when it signs or decrypts, and what the caller asked;
it returns a frozen dataclass and raises a ``SedisError`` whose message
says why it refused. Nothing here prints, prompts or speaks HTTP.

=================  ==========================================  ======================
use case           call                                        result
=================  ==========================================  ======================
publish            ``publish.publish(engines, actor, source)``  ``PublishResult``
share              ``access.share(engines, actor, image, who)`` ``ShareResult``
unshare            ``access.unshare(engines, actor, image,      ``UnshareResult``
                   who, rotate=...)``
pull               ``pull.pull(engines, actor, image, sink,     ``PullResult``
                   policy=...)``
verify             ``verify.verify(engines, artifacts,          ``list[Verdict]``
                   policy=...)``
explain            ``trust.explain(engines, policy,             ``Verdict``
                   artifact)``
status             ``query.set_status(engines, actor, image,    ``StatusChange``
                   status, reason)``
attest             ``attest.attest(engines, actor, image,       ``AttestResult``
                   kind, policy=...)``
revoke             ``attest.revoke(engines, actor, image,       ``AttestRevokeResult``
                   kind, policy=...)``
inspect            ``query.inspect(engines, image,              ``Inspection``
                   policy=...)``
list               ``query.list_images(engines, publisher=...,  ``list[ImageSummary]``
                   shared_with=...)``
export             ``export.export(engines, actor, image,       ``ExportResult``
                   sink, policy=...)``
rescan             ``rescan.rescan(engines, actor, image,       ``RescanResult``
                   policy=...)``
read a report      ``reports.read_report(engines, actor,        ``ScanReportDocument``
                   image, policy=...)``
scan               ``scanning.scan_artifact(engines, target,    ``ScanOutcome``
                   fail_on=...)``
judge a container  ``containers.judge_container(engines,        ``Judgement``
                   policy, container, host=...)``
=================  ==========================================  ======================

Whatever decides on trust takes a ``TrustPolicy``: ``trust.load_policy``
gives the one the settings name (or the default: the local identities and
the trusted contacts), and ``trust.with_signers`` narrows it. A name
(``NAME:TAG``) means what the policy's trusted publishers tagged; a
publisher's own records are what ``share``, ``unshare`` and ``status``
change.

Around them: ``vulndb_admin`` (``import_feeds``, ``status``), ``store_admin``
(add, cat, pins, CAR import and export, gc), ``ledger_admin`` (the ledger's
facts, deploying the contract, registering keys) and ``identities``
(``create_identity``).

A host (a server, a watchdog) builds its engines once, and at most one actor
for its own identity::

    from sedis.config import load
    from sedis.core.address import Address
    from sedis.core.records import Status
    from sedis.service import query, trust, verify
    from sedis.service.engines import Actor, AddressesOnly, Engines

    settings = load()
    policy = trust.load_policy(settings, AddressesOnly())
    with Engines.from_settings(settings) as engines:
        # Read-only use cases take no actor.
        verdicts = verify.verify(engines, ["app:1.0", "sha256:…"], policy=policy)
        mine = query.list_images(engines, publisher=Address.parse("0x…"))

        # One actor, for the host's own identity; it names recipients by address.
        gateway = Actor.unlock(engines, "gateway", password_from_secret)
        query.set_status(engines, gateway, "app:1.0", Status.REVOKED, "CVE-2026-1234")

Each thread may call use cases on the same engines and actor at once.
"""
