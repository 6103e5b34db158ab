"""Container images in and out: transports, the image model, and layer merging.

Sources and sinks for ``docker-archive:``, ``oci:``, ``oci-archive:`` and
``docker://`` live in one module each; ``transports.open_source`` and
``transports.open_sink`` pick one by reference. Every module is importable
without side effects; the registry client imports httpx only when used.
"""
