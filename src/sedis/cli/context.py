"""What every command needs: the settings, the engines they name, and the
collector's pace for a process that runs one command."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.store.base import ContentStore


def settings() -> Settings:
    from sedis import config

    return config.load()


def store() -> ContentStore:
    from sedis.store import open_store

    return open_store(settings())


def pace_collector() -> None:
    """Run the cyclic collector a hundred times less often than Python's default.

    Most of what a command allocates is code: the modules of py-evm, eth_*,
    jwcrypto and the rest, made once and kept to the end. At the default pace
    the collector re-walks all of it as it grows (about 40 ms of py-evm's
    import) to find next to no garbage. The slower pace still bounds what it
    leaves uncollected.
    """
    gc.set_threshold(100_000, 10, 10)


def freeze_collector() -> None:
    """Keep everything alive now out of the collector's later passes.

    Called once a command's code is loaded (its identity unlocked), and at
    exit: what it loaded lives as long as the process, and walking it again
    cost a Debian pull about 20 ms and every exit about 60 ms. Frozen objects
    are still freed as modules are torn down; only cyclic garbage made before
    the call is never collected, which a one-command process can afford.
    """
    gc.freeze()
