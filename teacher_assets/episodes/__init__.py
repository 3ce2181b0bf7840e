"""OXE-style robot episodes: the folder format, loading with per-episode validation, sample generation.

See ``datasets/oxe/README.md`` for the folder format and ``loader.py`` for the API.
"""

from .loader import (FRAME_COUNT, MAX_INSTRUCTION_CHARS, Episode, InvalidEpisode, build_contact_sheet,
                     discover_episodes, episode_id_for, load_episode)

__all__ = ["FRAME_COUNT", "MAX_INSTRUCTION_CHARS", "Episode", "InvalidEpisode", "build_contact_sheet",
           "discover_episodes", "episode_id_for", "load_episode"]
