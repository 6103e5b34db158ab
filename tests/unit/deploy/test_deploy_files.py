"""The shipped deployment files say what the watchdog reads and what a host checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sedis.watch.config import parse_watch_config

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _commented_out(text: str) -> str:
    """The example with every commented-out setting switched on."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip("# ")
        lines.append(stripped if line.startswith("# ") and ("=" in line or "[" in line) else line)
    return "\n".join(lines)


def test_the_example_watch_configuration_parses_as_shipped_and_with_every_option_on() -> None:
    text = (DEPLOY / "watch.example.toml").read_text()
    shipped = parse_watch_config(text, "watch.example.toml", {})
    assert shipped.enforce.action is None
    everything = parse_watch_config(_commented_out(text), "watch.example.toml", {})
    assert everything.enforce.action == "stop"
    assert everything.enforce.dry_run is True
    assert len(everything.exemptions) == 1
    assert everything.influxdb is not None
    assert everything.report is not None and everything.report.ca_file is not None


def test_the_daemonset_config_map_holds_a_valid_watch_configuration() -> None:
    text = (DEPLOY / "kubernetes" / "watch-daemonset.yaml").read_text()
    start = text.index("  watch.toml: |\n") + len("  watch.toml: |\n")
    end = text.index("  policy.toml: |")
    body = "\n".join(line.removeprefix("    ") for line in text[start:end].splitlines())
    config = parse_watch_config(body, "watch-daemonset.yaml", {})
    assert config.engine == "unix:///run/engine.sock"
    assert "readOnly: true" in text.split("- name: engine-socket\n              mountPath")[1][:80]
    assert "memory: 256Mi" in text and 'prometheus.io/scrape: "true"' in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "sedis-watch.service").read_text()
    sedis = Path(sys.executable).with_name("sedis")
    path = tmp_path / "sedis-watch.service"
    path.write_text(unit.replace("/usr/local/bin/sedis", str(sedis)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def test_the_compose_file_mounts_the_socket_read_only() -> None:
    text = (DEPLOY / "compose" / "watch.compose.yaml").read_text()
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in text
    assert "mem_limit: 256m" in text


def test_the_serve_deployment_config_map_holds_a_valid_serve_configuration() -> None:
    from sedis.server.config import parse_serve_config

    text = (DEPLOY / "kubernetes" / "serve-deployment.yaml").read_text()
    start = text.index("  serve.toml: |\n") + len("  serve.toml: |\n")
    end = text.index("  policy.toml: |")
    body = "\n".join(line.removeprefix("    ") for line in text[start:end].splitlines())
    config = parse_serve_config(body, "serve-deployment.yaml")
    assert (config.host, config.port) == ("0.0.0.0", 8480) and config.identity == "sedis-server"
    assert config.trusted_proxies == ("10.0.0.0/8",)
    # Listening where other pods reach it takes the flag that says so.
    assert '"--allow-remote"' in text and "defaultMode: 0400" in text
    assert "path: /api/v1/health" in text
    import yaml

    kinds = [doc["kind"] for doc in yaml.safe_load_all(text)]
    assert kinds == [
        "ServiceAccount",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_serve_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "systemd" / "sedis-serve.service").read_text()
    sedis = Path(sys.executable).with_name("sedis")
    path = tmp_path / "sedis-serve.service"
    path.write_text(unit.replace("/usr/local/bin/sedis", str(sedis)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
