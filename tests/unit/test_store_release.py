"""ContentStore.release: unpinned now, and on the embedded store removed now, but only
what no other pin reaches."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import NotFoundError
from sedis.store.embedded import EmbeddedStore
from sedis.store.kubo import KuboStore
from tests.conftest import pseudo_random


def pack_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((root / "packs").iterdir()))


def test_release_removes_what_only_the_released_dag_reached(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    shared = store.add_bytes(pseudo_random(600_000, "shared"), pin=False)  # three chunks
    own = store.add_bytes(pseudo_random(300_000, "own"), pin=False)
    other = store.add_bytes(pseudo_random(1000, "other"), pin=False)
    old = store.add_directory([("shared", shared), ("own", own)])
    kept = store.add_directory([("shared", shared), ("other", other)])
    unpinned = store.add_bytes(b"an add that has not pinned its root yet", pin=False)

    assert store.release([old.cid, old.cid, other.cid]) == [old.cid]  # only pins count

    assert old.cid not in store.pins() and kept.cid in store.pins()
    for gone in (old.cid, own.cid):
        assert store.locate(gone) is None
        with pytest.raises(NotFoundError):
            store.get_block(gone)
    assert b"".join(store.cat(f"{kept.cid}/shared")) == pseudo_random(600_000, "shared")
    assert store.has(unpinned.cid)  # not the released DAG's, so not swept as gc would
    assert pseudo_random(300_000, "own")[1000:1256] not in pack_bytes(tmp_path)
    assert store.release([old.cid]) == []
    store.close()


@pytest.mark.integration
def test_release_on_the_kubo_node_unpins_and_skips_what_is_not_pinned(jsipfs_url: str) -> None:
    node = KuboStore(jsipfs_url)
    data = pseudo_random(2000, "release-on-kubo")
    pinned = node.add_bytes(data)
    loose = node.add_bytes(pseudo_random(2000, "never pinned"), pin=False)
    assert node.release([pinned.cid, loose.cid]) == [pinned.cid]
    assert pinned.cid not in node.pins()
    node.gc()
    with pytest.raises(NotFoundError):
        node.get_block(pinned.cid)
    node.close()


def test_a_release_killed_before_its_removal_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EmbeddedStore(tmp_path)
    doomed = store.add_bytes(pseudo_random(300_000, "doomed"))
    kept = store.add_bytes(pseudo_random(1000, "kept"))

    def killed(digests: set[bytes]) -> tuple[int, int]:
        raise KeyboardInterrupt  # the process dies between the pin set and the removal

    monkeypatch.setattr(store._blocks, "remove", killed)
    with pytest.raises(KeyboardInterrupt):
        store.release([doomed.cid])
    monkeypatch.undo()
    assert doomed.cid not in store.pins() and store.has(doomed.cid)
    store.close()

    again = EmbeddedStore(tmp_path)
    assert again.release([]) == []  # the re-run names nothing new, and still finishes
    assert not again.has(doomed.cid) and again.has(kept.cid)
    assert pseudo_random(300_000, "doomed")[5000:5256] not in pack_bytes(tmp_path)
    again.close()
