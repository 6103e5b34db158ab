"""``sedis serve``: the REST API, the web UI and Sign-In with Ethereum, over the use cases.

The app is a thin adapter: every route parses what it was asked, calls one use
case of ``sedis.service`` on the process's one ``Engines`` (and, for actions,
its one ``Actor``), and answers with the same JSON as the CLI's ``-o json``.

=================  =====================================================
module             what it holds
=================  =====================================================
``config``         ``ServeConfig`` and its TOML loader: listen, TLS, roles
``context``        ``ServerContext``: what every request shares
``auth``           sessions, bearer tokens, nonces, rate limits, messages
``signin``         the Sign-In with Ethereum routes under ``/api/v1/auth``
``deps``           the caller a route demands: a reader, or a role for an action
``errors``         ``{"errors":[{"code","message"}]}`` and the statuses
``queries``        what the API and the UI read: filters, pages, documents
``schemas``        the JSON schemas of the bodies, made from the result types
``api_read``       the read endpoints under ``/api/v1``
``api_actions``    status, share, unshare, attest, rescan, watch reports
``events``         the ledger followed, as server-sent events
``ui``             the web UI's pages (templates and static files)
``openapi``        the committed OpenAPI document, written and checked
``app``            ``create_app``: the pieces put together
=================  =====================================================
"""
