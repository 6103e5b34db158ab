"""Where the watchdog's alerts go: Alertmanager, a JSON webhook, e-mail (``base.AlertChannel``)."""
