"""From a location's spec to a code server ready to spawn: its environment and command line.

A built environment holds the child runtime in its site-packages. An
`executable_path` interpreter (an environment the user made) gets nothing
installed: the server starts through a bootstrap that puts a private copy of the
runtime first on sys.path, and that environment must already hold grpcio and protobuf.
"""

from __future__ import annotations

from supervisor.dagsterui.instance import init_instance
from supervisor.envs import BuiltEnv, EnvRequest, ensure_env, needs_env, plan
from supervisor.envs.build import Progress
from supervisor.errors import EnvBuildError, SupervisorError
from supervisor.launch.command import (
    BOOTSTRAP,
    Launchable,
    child_environment,
    code_server_flags,
)
from supervisor.launch.dagster import check_dagster, dagster_command, dagster_version
from supervisor.pythons import probe
from supervisor.runtime import install_runtime, runtime_hash
from supervisor.workspace import LocationSpec, WorkspaceSpec

# Run by the user's interpreter: argv[1] is the runtime folder, which replaces the
# "" that -c puts first on sys.path (so that the working folder shadows nothing).
EXTERNAL_BOOTSTRAP = """
import sys
sys.path[0] = sys.argv.pop(1)
try:
    import grpc, google.protobuf
except ImportError as error:
    sys.stderr.write(
        "this interpreter's environment lacks grpcio or protobuf, which a code server"
        " needs (install them there): %s\\n" % error
    )
    sys.exit(3)
from supervisor.codeserver.server import main
sys.exit(main())
"""


def request_for(workspace: WorkspaceSpec, location: LocationSpec) -> EnvRequest:
    """The environment request of one location (finds its interpreter)."""
    return plan(workspace, (location.name,))[location.name]


def build_for(
    workspace: WorkspaceSpec,
    request: EnvRequest,
    progress: Progress | None = None,
    live: Progress | None = None,
) -> BuiltEnv:
    return ensure_env(workspace.envs_dir, request, progress, live=live)


def _target_flags(location: LocationSpec) -> list[str]:
    autoload = location.kind == "autoload_defs_module"
    return code_server_flags(
        module_name=None if autoload else location.module_name,
        autoload_defs_module=location.module_name if autoload else None,
        python_file=str(location.python_file) if location.python_file else None,
        working_directory=(str(location.working_directory) if location.working_directory else None),
        attribute=location.attribute,
        location_name=location.name,
        heartbeat_timeout=location.heartbeat_timeout,
        drain_timeout=location.drain_timeout,
        # A waiting run worker imports the location's code: a second copy of its memory,
        # which a memory_limit would count. With a limit, every run starts cold.
        warm_workers=0 if location.memory_limit else None,
    )


def working_folder(workspace: WorkspaceSpec, location: LocationSpec) -> str:
    if location.working_directory:
        return str(location.working_directory)
    if location.python_file:
        return str(location.python_file.parent)
    return str(workspace.root)


def with_instance(
    workspace: WorkspaceSpec, location: LocationSpec, env: dict[str, str], python: str
) -> None:
    """A Dagster location sees the workspace's one Dagster instance (created, once, before
    any server starts), unless its entry sets its own DAGSTER_HOME."""
    if "DAGSTER_HOME" not in location.env_dict:
        env["DAGSTER_HOME"] = str(init_instance(workspace, python, env))


def launchable_in_env(
    workspace: WorkspaceSpec, location: LocationSpec, request: EnvRequest, built: BuiltEnv
) -> Launchable:
    """Start the location's server with its built environment's interpreter."""
    env = child_environment(location.env_dict, venv=built.path)
    cwd = working_folder(workspace, location)
    if location.effective_runtime == "dagster":
        version = check_dagster(location, str(built.python))
        with_instance(workspace, location, env, str(built.python))
        return Launchable(
            argv=dagster_command(str(built.python), location),
            env=env,
            cwd=cwd,
            python_version=request.python.version,
            env_key=request.key,
            runtime="dagster",
            dagster_version=version,
        )
    argv = [str(built.python), "-c", BOOTSTRAP, *_target_flags(location)]
    return Launchable(
        argv=argv,
        env=env,
        cwd=cwd,
        python_version=request.python.version,
        env_key=request.key,
    )


def launchable_external(workspace: WorkspaceSpec, location: LocationSpec) -> Launchable:
    """Start the location's server with the user's own interpreter, installing nothing there."""
    assert location.executable_path is not None
    executable = location.executable_path
    info = probe(executable)
    if info is None:
        raise SupervisorError(
            f"location {location.name!r}: executable_path {executable} is not a working"
            " Python interpreter"
        )
    if not info.can_host:
        raise SupervisorError(
            f"location {location.name!r}: executable_path {executable} is Python"
            f" {info.version}; code servers need 3.8 or later"
        )
    venv = executable.parent.parent
    env = child_environment(
        location.env_dict, venv=venv if (venv / "pyvenv.cfg").is_file() else None
    )
    # Absent runtime: Dagster's server when that environment has dagster.
    found = dagster_version(str(executable)) if location.runtime != "supervisor" else ""
    if location.runtime == "dagster" or (location.runtime is None and found):
        version = check_dagster(location, str(executable), found)
        with_instance(workspace, location, env, str(executable))
        return Launchable(
            argv=dagster_command(str(executable), location),
            env=env,
            cwd=working_folder(workspace, location),
            python_version=info.version,
            env_key=None,
            runtime="dagster",
            dagster_version=version,
        )
    runtime = workspace.state_dir / "runtime" / runtime_hash()
    if not (runtime / "supervisor" / "RUNTIME_HASH").is_file():
        runtime.mkdir(parents=True, exist_ok=True)
        install_runtime(runtime)
    flags = _target_flags(location)
    return Launchable(
        argv=[str(executable), "-c", EXTERNAL_BOOTSTRAP, str(runtime), *flags],
        env=env,
        cwd=working_folder(workspace, location),
        python_version=info.version,
        env_key=None,
    )


def launchable_for(
    workspace: WorkspaceSpec,
    location: LocationSpec,
    progress: Progress | None = None,
    live: Progress | None = None,
) -> Launchable:
    """Everything a local location needs before its server can start: its interpreter, its
    environment (built when missing) and its command line. Blocking: uv may run."""
    if not needs_env(location):
        return launchable_external(workspace, location)
    request = request_for(workspace, location)
    try:
        built = build_for(workspace, request, progress, live)
    except EnvBuildError as exc:
        if not location.line or exc.where:
            raise
        # Which entry asked for it: the resolver's message alone does not say.
        where = location.where
        raise EnvBuildError(exc.locations, exc.reason, where) from None
    return launchable_in_env(workspace, location, request, built)
