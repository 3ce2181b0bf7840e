"""Import before litellm: use the bundled price map (no network here) and keep litellm quiet."""

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")
