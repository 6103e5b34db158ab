"""Ledger.change_grants, a rotation's ledger part: one transaction, all or none, the
publisher's alone. On the embedded chain and on a real anvil."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.records import AuditQuery, GrantRequest, digest_to_bytes
from sedis.ledger.refusals import refusal
from tests.integration.ledger.conftest import Chain, addr
from tests.integration.ledger.raw import RawRevert
from tests.integration.ledger.test_contract_suite import is_granted, published, rand_digest

pytestmark = pytest.mark.integration


def test_a_revoke_and_its_re_grants_are_one_transaction(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    me = addr(owner)
    digest, _ = published(ledger)
    for who in (owner, gone, stays):
        ledger.grant(digest, GrantRequest(addr(who), "bafyepoch0", rand_digest()))
    new_hash = rand_digest()
    receipt = ledger.change_grants(
        digest,
        [addr(gone)],
        [
            GrantRequest(me, "bafyepoch1owner", new_hash),
            GrantRequest(addr(stays), "bafyepoch1", new_hash),
        ],
    )
    reader = chain.reader()
    events = [
        e for e in reader.audit_log(AuditQuery(digest=digest)) if e.tx_hash == receipt.tx_hash
    ]
    assert [e.name for e in events] == ["GrantRevoked", "GrantAdded", "GrantAdded"]
    assert not is_granted(reader, me, digest, addr(gone))
    latest = reader.grant_of(me, digest, addr(stays))
    assert latest is not None and latest.manifest_cid == "bafyepoch1"


def test_a_refused_part_undoes_the_whole_change(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    me = addr(owner)
    digest, _ = published(ledger)
    for who in (gone, stays):
        ledger.grant(digest, GrantRequest(addr(who), "bafyepoch0", rand_digest()))
    before = sorted(chain.reader().grants(me, digest), key=lambda g: g.recipient)
    expired = GrantRequest(addr(stays), "bafyepoch1", rand_digest(), expires_at=1)
    with pytest.raises(InvalidInputError, match="is not after the chain's time"):
        ledger.change_grants(digest, [addr(gone)], [expired])
    assert sorted(chain.reader().grants(me, digest), key=lambda g: g.recipient) == before
    assert is_granted(chain.reader(), me, digest, addr(gone))


def test_only_the_publisher_may_change_grants(chain: Chain) -> None:
    owner, intruder, friend = Account.create(), Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    me = addr(owner)
    chain.writer(owner).grant(digest, GrantRequest(addr(friend), "bafyepoch0", rand_digest()))
    # Through the client, a change of grants is about the intruder's own record: none.
    with pytest.raises(NotFoundError, match=f"{intruder.address} has no record of {digest}"):
        chain.writer(intruder).change_grants(
            digest, [addr(friend)], [GrantRequest(addr(intruder), "bafyx", rand_digest())]
        )
    # Raw, naming the owner's record, it is refused as a whole.
    raw, d = chain.raw(intruder), digest_to_bytes(digest)
    calls = [
        raw.encode("revokeGrant", owner.address, d, friend.address),
        raw.encode("grant", owner.address, d, intruder.address, "bafyx", os.urandom(32), 0),
    ]
    with pytest.raises(RawRevert) as caught:
        raw.send("multicall", calls)
    assert caught.value.error == "NotPublisher"
    message = str(refusal("grant", caught.value.data))
    assert message.startswith(f"{intruder.address} is not the publisher of this record")
    assert message.endswith("only its publisher may change its grants")
    reader = chain.reader()
    assert is_granted(reader, me, digest, addr(friend))
    assert not is_granted(reader, me, digest, addr(intruder))
