"""The offline scanner: package inventory, vulnerability database, matching, reports."""
