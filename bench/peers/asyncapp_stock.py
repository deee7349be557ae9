"""Peer: a minimal stock Connexion 3 AsyncApp serving the three benchmarked operations.

The same spec, security functions and handlers (``stock_handlers``) as the stock FlaskApp peer,
on ``AsyncApp`` instead: nothing is tuned, only public API is used. AsyncApp runs the sync
handlers in Starlette's thread pool, so the SQLite work never blocks the event loop. Serve it
with ``uvicorn --app-dir bench/peers asyncapp_stock:app`` and ``BENCH_PEER_DB`` set to a
database made by ``common.seed``.
"""

from __future__ import annotations

from pathlib import Path

from connexion import AsyncApp

app = AsyncApp(__name__, specification_dir=Path(__file__).parent)
app.add_api("spec.yaml")
