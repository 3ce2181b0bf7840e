"""Registry of the offline author's role handlers.

A handler answers one agent role (``"scenario.planner"``, ``"teacher.feasibility"`` …) in the
same format a hosted model must. Packages register handlers on import; the registry imports the
handler modules lazily the first time a role is asked for, so definitions load fast.
"""

from __future__ import annotations

import importlib
from typing import Callable

from .models import OfflineRequest

Handler = Callable[[OfflineRequest], str]

# Modules whose import registers handlers (kept as names: imported only when first needed).
HANDLER_MODULES: list[str] = [
    "benchgen_assets.authoring.offline_author",
    "teacher_assets.agents.offline_teacher",
]

_HANDLERS: dict[str, Handler] = {}


class UnknownRoleError(LookupError):
    pass


def offline_role(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def handler_for(role: str) -> Handler:
    if role not in _HANDLERS:
        for module in HANDLER_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as e:
                if not e.name or not (module == e.name or module.startswith(e.name + ".")):
                    raise  # the module exists but something it imports is missing
    try:
        return _HANDLERS[role]
    except KeyError:
        raise UnknownRoleError(
            f"the offline author has no handler for agent role {role!r}; known roles: {sorted(_HANDLERS)}"
        ) from None
