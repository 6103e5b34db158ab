"""Ledger.change_grants, a rotation's ledger part: one transaction, all or none, the
owner's alone. On the embedded chain and on a real anvil."""

from __future__ import annotations

import pytest
from eth_account import Account

from sedis.core.errors import InvalidInputError, PermissionDeniedError
from sedis.core.records import GrantRequest
from tests.integration.ledger.conftest import Chain
from tests.integration.ledger.test_contract_suite import published, rand_digest

pytestmark = pytest.mark.integration


def test_a_revoke_and_its_re_grants_are_one_transaction(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.open(owner)
    digest, _ = published(ledger)
    for who in (owner, gone, stays):
        ledger.grant(digest, who.address, "bafyepoch0", rand_digest())
    new_hash = rand_digest()
    receipt = ledger.change_grants(
        digest,
        [gone.address],
        [
            GrantRequest(owner.address, "bafyepoch1owner", new_hash),
            GrantRequest(stays.address, "bafyepoch1", new_hash),
        ],
    )
    reader = chain.open()
    events = [e for e in reader.audit_log(digest) if e.tx_hash == receipt.tx_hash]
    assert [e.name for e in events] == ["GrantRevoked", "GrantAdded", "GrantAdded"]
    assert not reader.is_granted(digest, gone.address)
    latest = reader.grant_of(digest, stays.address)
    assert latest is not None and latest.manifest_cid == "bafyepoch1"


def test_a_refused_part_undoes_the_whole_change(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.open(owner)
    digest, _ = published(ledger)
    for who in (gone, stays):
        ledger.grant(digest, who.address, "bafyepoch0", rand_digest())
    before = sorted(chain.open().grants(digest), key=lambda g: g.recipient)
    expired = GrantRequest(stays.address, "bafyepoch1", rand_digest(), expires_at=1)
    with pytest.raises(InvalidInputError, match="is not after the chain's time"):
        ledger.change_grants(digest, [gone.address], [expired])
    assert sorted(chain.open().grants(digest), key=lambda g: g.recipient) == before
    assert chain.open().is_granted(digest, gone.address)


def test_only_the_owner_may_change_grants(chain: Chain) -> None:
    owner, intruder, friend = Account.create(), Account.create(), Account.create()
    digest, _ = published(chain.open(owner))
    chain.open(owner).grant(digest, friend.address, "bafyepoch0", rand_digest())
    theirs = chain.open(intruder)
    with pytest.raises(PermissionDeniedError) as caught:
        theirs.change_grants(
            digest,
            [friend.address],
            [GrantRequest(intruder.address, "bafyx", rand_digest())],
        )
    assert str(caught.value).startswith(
        f"only the owner of {digest} ({owner.address}) may change its grants"
    )
    reader = chain.open()
    assert reader.is_granted(digest, friend.address)
    assert not reader.is_granted(digest, intruder.address)
