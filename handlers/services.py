"""What every operation is handed besides its request (bound by the app factory's resolver)."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.config import Config
from storage import Store


@dataclass(frozen=True)
class Services:
    """What operations need besides their request: passed as their first argument."""

    config: Config
    store: Store
