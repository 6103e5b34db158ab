"""`make lint`'s import contracts catch an import across the layers of the code.

Each test copies the source tree, adds one import that a contract forbids, and
runs lint-imports on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "src" / "sedis",
        tmp_path / "src" / "sedis",
        ignore=shutil.ignore_patterns("__pycache__", "demo_data"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the installed package.
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def add_import(tree: Path, module: str, imported: str) -> None:
    path = tree / "src" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402\n")


def broken(output: str) -> set[str]:
    return {
        line.removesuffix(" BROKEN") for line in output.splitlines() if line.endswith(" BROKEN")
    }


def test_a_use_case_importing_a_concrete_ledger_breaks_its_contract(tree: Path) -> None:
    add_import(tree, "sedis.service.query", "sedis.ledger.embedded")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "Use cases reach engines only through their interfaces" in broken(result.stdout)
    assert "sedis.service.query -> sedis.ledger.embedded" in result.stdout


def test_a_command_importing_a_store_breaks_its_contract(tree: Path) -> None:
    add_import(tree, "sedis.cli.contacts_cmds", "sedis.store.kubo")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "The CLI reaches ledgers and stores only through the service layer" in broken(
        result.stdout
    )
    assert "sedis.cli.contacts_cmds -> sedis.store.kubo" in result.stdout


def test_the_domain_importing_anything_of_sedis_breaks_its_contracts(tree: Path) -> None:
    add_import(tree, "sedis.core.verdict", "sedis.oci")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert {
        "The pure domain imports nothing of sedis",
        "Layers: each package imports only the ones below it",
    } <= broken(result.stdout)
    assert "sedis.core.verdict -> sedis.oci" in result.stdout


def test_an_import_upward_across_siblings_breaks_the_layers(tree: Path) -> None:
    add_import(tree, "sedis.store.car", "sedis.ledger.heads")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "Layers: each package imports only the ones below it" in broken(result.stdout)


def test_the_tree_as_it_is_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout
