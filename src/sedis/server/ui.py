"""(being written)"""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Adds the UI's pages and static files to ``app``."""
