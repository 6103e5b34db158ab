"""Ledger.change_grants, a rotation's ledger part: one transaction, all or none, the
owner's alone. On the embedded chain and on a real anvil."""

from __future__ import annotations

import pytest
from eth_account import Account

from sedis.core.errors import InvalidInputError, PermissionDeniedError
from sedis.core.records import GrantRequest
from tests.integration.ledger.conftest import Chain, addr
from tests.integration.ledger.test_contract_suite import is_granted, published, rand_digest

pytestmark = pytest.mark.integration


def test_a_revoke_and_its_re_grants_are_one_transaction(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    for who in (owner, gone, stays):
        ledger.grant(digest, GrantRequest(addr(who), "bafyepoch0", rand_digest()))
    new_hash = rand_digest()
    receipt = ledger.change_grants(
        digest,
        [addr(gone)],
        [
            GrantRequest(addr(owner), "bafyepoch1owner", new_hash),
            GrantRequest(addr(stays), "bafyepoch1", new_hash),
        ],
    )
    reader = chain.reader()
    events = [e for e in reader.audit_log(digest) if e.tx_hash == receipt.tx_hash]
    assert [e.name for e in events] == ["GrantRevoked", "GrantAdded", "GrantAdded"]
    assert not is_granted(reader, digest, addr(gone))
    latest = reader.grant_of(digest, addr(stays))
    assert latest is not None and latest.manifest_cid == "bafyepoch1"


def test_a_refused_part_undoes_the_whole_change(chain: Chain) -> None:
    owner, gone, stays = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    for who in (gone, stays):
        ledger.grant(digest, GrantRequest(addr(who), "bafyepoch0", rand_digest()))
    before = sorted(chain.reader().grants(digest), key=lambda g: g.recipient)
    expired = GrantRequest(addr(stays), "bafyepoch1", rand_digest(), expires_at=1)
    with pytest.raises(InvalidInputError, match="is not after the chain's time"):
        ledger.change_grants(digest, [addr(gone)], [expired])
    assert sorted(chain.reader().grants(digest), key=lambda g: g.recipient) == before
    assert is_granted(chain.reader(), digest, addr(gone))


def test_only_the_owner_may_change_grants(chain: Chain) -> None:
    owner, intruder, friend = Account.create(), Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    chain.writer(owner).grant(digest, GrantRequest(addr(friend), "bafyepoch0", rand_digest()))
    theirs = chain.writer(intruder)
    with pytest.raises(PermissionDeniedError) as caught:
        theirs.change_grants(
            digest,
            [addr(friend)],
            [GrantRequest(addr(intruder), "bafyx", rand_digest())],
        )
    assert str(caught.value).startswith(
        f"only the owner of {digest} ({owner.address}) may change its grants"
    )
    reader = chain.reader()
    assert is_granted(reader, digest, addr(friend))
    assert not is_granted(reader, digest, addr(intruder))
