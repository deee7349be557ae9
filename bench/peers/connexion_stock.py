"""Peer: a minimal stock Connexion 3 FlaskApp serving the three benchmarked operations.

Nothing is tuned: Connexion's own security handlers and request-body validator, Flask behind its
WSGI bridge, the handlers of ``stock_handlers`` doing the SQLite work in ``common.Store``. Serve
it with ``uvicorn --app-dir bench/peers connexion_stock:app`` and ``BENCH_PEER_DB`` set to a
database made by ``common.seed``.
"""

from __future__ import annotations

from pathlib import Path

from connexion import FlaskApp

app = FlaskApp(__name__, specification_dir=Path(__file__).parent)
app.add_api("spec.yaml")
