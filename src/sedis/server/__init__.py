"""``sedis serve``: the REST API, the web UI and Sign-In with Ethereum, over the use cases.

The app is a thin adapter: every route parses what it was asked, calls one use
case of ``sedis.service`` on the process's one ``Engines`` (and, for actions,
its one ``Actor``), and answers with the same JSON as the CLI's ``-o json``.

=================  =====================================================
module             what it holds
=================  =====================================================
``config``         ``ServeConfig``: listen address, TLS, roles, sign-in
``context``        ``ServerContext``: what every request shares
``auth``           callers and roles, SIWE, sessions, bearer tokens, CSRF
``errors``         ``{"errors":[{"code","message"}]}`` and the statuses
``shapes``         the JSON of each result (shared with the CLI)
``api_read``       the read endpoints under ``/api/v1``
``api_actions``    status, share, unshare, attest, rescan
``events``         the ledger followed, as server-sent events
``ui``             the web UI's pages (templates and static files)
``app``            ``create_app``: the pieces put together
=================  =====================================================
"""
