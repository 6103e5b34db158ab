"""The use cases: publish, share, unshare, pull, verify, status, inspect, list.

Written only against the interfaces of the layers below (store, ledger,
crypto, oci); the CLI and the server call these and render the results.
"""
