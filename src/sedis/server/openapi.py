"""The committed OpenAPI document: ``python -m sedis.server.openapi`` writes it from the
app, ``--check`` says whether it is still what the app serves.

The document depends on the routes and the result types only, not on a
server's configuration or its ledger, so it is made from an app over a
throwaway home.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COMMITTED = Path(__file__).with_name("openapi.json")


def document() -> dict[str, Any]:
    """The OpenAPI document the app serves at ``/api/v1/openapi.json``."""
    from sedis.config import Settings
    from sedis.server.app import create_app
    from sedis.server.config import ServeConfig
    from sedis.server.context import ServerContext
    from sedis.service.engines import Engines
    from sedis.service.trust import default_policy

    with (
        tempfile.TemporaryDirectory(prefix="sedis-openapi-") as home,
        Engines.from_settings(Settings(home=Path(home))) as engines,
    ):
        ctx = ServerContext.build(engines, ServeConfig(), default_policy([], []))
        doc: dict[str, Any] = create_app(ctx, start_events=False).openapi()
        return doc


def text_of(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sedis.server.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="Compare; write nothing.")
    parser.add_argument("--output", type=Path, default=COMMITTED, help="Where the document is.")
    args = parser.parse_args(argv)
    made = text_of(document())
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != made:
            sys.stderr.write(
                f"{path} is not what the app serves: run python -m sedis.server.openapi\n"
            )
            return 1
        return 0
    path.write_text(made, encoding="utf-8")
    sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
