"""Environments: the key of each location's environment, builds, the cache and its garbage."""

from supervisor.envs.build import BuiltEnv, ensure_env, lookup
from supervisor.envs.keys import EnvRequest, env_key, needs_env, plan
from supervisor.envs.store import (
    BuildReport,
    build_all,
    collect_garbage,
    list_envs,
    location_env_path,
)

__all__ = [
    "BuildReport",
    "BuiltEnv",
    "EnvRequest",
    "build_all",
    "collect_garbage",
    "ensure_env",
    "env_key",
    "list_envs",
    "location_env_path",
    "lookup",
    "needs_env",
    "plan",
]
