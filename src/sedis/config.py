"""Settings: SEDIS_HOME, its sedis.toml, and environment overrides."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sedis.core.durations import parse_duration
from sedis.core.errors import ConfigError, InvalidInputError

CONFIG_FILE = "sedis.toml"
_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    store_url: str = "embedded"
    ledger_url: str = "embedded"
    identity: str | None = None
    ledger_contract: str | None = None
    ledger_chain_id: int | None = None
    # Seconds: a JSON-RPC head older than this by the local clock is refused.
    # Off by default, since dev chains (anvil, geth --dev) mine only on demand.
    ledger_max_head_age: int | None = None
    # The trust policy file (SEDIS_POLICY, or ``policy`` in sedis.toml); None: the
    # home's policy.toml if there is one, else the default policy.
    policy_path: Path | None = None

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def ledger_dir(self) -> Path:
        return self.home / "ledger"


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("sedis", appauthor=False))


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env["SEDIS_HOME"]).expanduser() if env.get("SEDIS_HOME") else default_home()
    table = _read_toml(home / CONFIG_FILE)
    store_url = env.get("SEDIS_STORE_URL") or _get(table, "store", "url") or "embedded"
    ledger_url = env.get("SEDIS_LEDGER_URL") or _get(table, "ledger", "url") or "embedded"
    identity = env.get("SEDIS_IDENTITY") or _get(table, "identity", "default") or None
    for key, url in (("store.url", store_url), ("ledger.url", ledger_url)):
        if url != "embedded" and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{key} must be 'embedded' or an http(s):// URL, not {url!r}")
    contract = env.get("SEDIS_LEDGER_CONTRACT") or _get(table, "ledger", "contract") or None
    if contract is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", contract):
        raise ConfigError(f"ledger.contract must be a 0x address, not {contract!r}")
    chain_id = _chain_id(env.get("SEDIS_LEDGER_CHAIN_ID"), table)
    max_head_age = _max_head_age(
        env.get("SEDIS_LEDGER_MAX_HEAD_AGE") or _get(table, "ledger", "max_head_age")
    )
    policy_path = _policy_path(env.get("SEDIS_POLICY"), _get_top(table, "policy"), home)
    return Settings(
        home=home,
        store_url=store_url,
        ledger_url=ledger_url,
        identity=identity,
        ledger_contract=contract,
        ledger_chain_id=chain_id,
        ledger_max_head_age=max_head_age,
        policy_path=policy_path,
    )


def _policy_path(from_env: str | None, from_file: str | None, home: Path) -> Path | None:
    """SEDIS_POLICY as given; a relative ``policy`` in sedis.toml is taken from SEDIS_HOME."""
    if from_env:
        return Path(from_env).expanduser()
    if not from_file:
        return None
    path = Path(from_file).expanduser()
    return path if path.is_absolute() else home / path


def _max_head_age(text: str | None) -> int | None:
    if text is None or text.strip().lower() in ("", "off"):
        return None
    try:
        return parse_duration(text)
    except InvalidInputError:
        raise ConfigError(
            f"ledger.max_head_age must be a duration such as 60s, 5m or 'off', not {text!r}"
        ) from None


def _chain_id(from_env: str | None, table: dict[str, object]) -> int | None:
    if from_env:
        if not from_env.isdigit():
            raise ConfigError(f"SEDIS_LEDGER_CHAIN_ID must be a number, not {from_env!r}")
        return int(from_env)
    section = table.get("ledger")
    value = section.get("chain_id") if isinstance(section, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"ledger.chain_id in {CONFIG_FILE} must be a positive integer")
    return value


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than 1 MiB")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _get(table: dict[str, object], section: str, key: str) -> str | None:
    value = table.get(section)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"[{section}] in {CONFIG_FILE} must be a table")
    item = value.get(key)
    if item is None:
        return None
    if not isinstance(item, str):
        raise ConfigError(f"{section}.{key} in {CONFIG_FILE} must be a string")
    return item


def _get_top(table: dict[str, object], key: str) -> str | None:
    item = table.get(key)
    if item is None:
        return None
    if not isinstance(item, str):
        raise ConfigError(f"{key} in {CONFIG_FILE} must be a string")
    return item
