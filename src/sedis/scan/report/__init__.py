"""Scan report formats: JSON, SARIF 2.1.0, CycloneDX 1.6, and the terminal table."""
