"""The running-container watchdog (``sedis watch``).

``runtime`` holds the container engines it follows (one interface, a module
per engine), ``alerts`` the channels it speaks through, ``metrics`` and
``influx`` the sinks of its verdicts, and ``watchdog`` the loop that ties
them: engine events, ledger events and periodic passes, each container
judged by ``service.containers.judge_container``.
"""
