"""Persistent response cache: one JSON file per request key, written atomically.

Files (not one database) so parallel partition runs in separate processes share it safely.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from resources.atomic import atomic_write_json


def cache_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[dict]:
        p = self._path(key)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            p.unlink(missing_ok=True)  # a damaged entry is a miss, never an error
            return None

    def put(self, key: str, entry: dict) -> None:
        atomic_write_json(self._path(key), entry)
