# Sourced by the scripts: the environment every benchgen command runs in.
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
# Dagster passes event batches (planned events, range materializations) to the storage at once.
export DAGSTER_EVENT_BATCH_SIZE="${DAGSTER_EVENT_BATCH_SIZE:-1000}"
export PATH="$PWD/.venv/bin:$PATH"
