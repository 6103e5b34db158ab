"""The offline vulnerability database: feed import, status, and lookups."""
