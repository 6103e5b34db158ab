"""Container engines the watchdog follows, behind ``base.ContainerRuntime``."""
