"""sedis: share container images securely."""

__version__ = "0.1.0"
