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
pull               ``pull.pull(engines, actor, image, sink)``   ``PullResult``
verify             ``verify.verify(engines, artifacts)``        ``list[Verdict]``
status             ``query.set_status(engines, actor, image,    ``StatusChange``
                   status, reason)``
inspect            ``query.inspect(engines, image)``            ``Inspection``
list               ``query.list_images(engines, owner=...,      ``list[ImageSummary]``
                   shared_with=...)``
export             ``export.export(engines, actor, image,       ``ExportResult``
                   sink)``
rescan             ``rescan.rescan(engines, actor, image)``     ``RescanResult``
=================  ==========================================  ======================

A host (a server, a watchdog) builds its engines once, and at most one actor
for its own identity::

    from sedis.config import load
    from sedis.core.address import Address
    from sedis.crypto.identities import IdentityStore
    from sedis.service import query, verify
    from sedis.service.engines import Actor, Engines

    engines = Engines.from_settings(load())
    verdicts = verify.verify(engines, ["sha256:…"])          # no actor: it only reads
    mine = query.list_images(engines, owner=Address.parse("0x…"))

    identities = IdentityStore(engines.home)
    signer, keys = identities.unlock("gateway", password_from_secret)
    gateway = Actor.of(engines, signer, keys)                 # recipients by address
    query.set_status(engines, gateway, "app:1.0", Status.REVOKED, "CVE-2026-1234")
    engines.close()
"""
