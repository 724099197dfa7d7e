"""`supervisor export docker|kubernetes`: the locations, for a cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from supervisor import render
from supervisor.commands.common import (
    check_locations,
    complete_locations,
    read_workspace,
    say,
    workspace_option,
)
from supervisor.errors import SupervisorError, WorkspaceError

F = TypeVar("F", bound=Callable[..., Any])
LARGE_CODE = 100 * 2**20  # more than this in an image's code folder is worth a word


def _image_prefix_option(func: F) -> F:
    return click.option(
        "--image-prefix",
        metavar="REGISTRY/NAME",
        help="Name images REGISTRY/NAME/<location> (e.g. registry.example.com/team)"
        " [default: just <location>, for a local image].",
    )(func)


@click.group()
def export() -> None:
    """Export locations as Docker images and Kubernetes manifests, for a cluster.

    `export docker` writes a build context per location, pinned to the environment built
    here; `export kubernetes` writes a Deployment and a Service per location, a workspace of
    grpc_server entries for the host side, and Dagster Helm chart values for Dagster
    locations. Both name each image by the same content tag.
    """


@export.command("docker")
@workspace_option
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Write DIR/<location>/ here: Dockerfile, .dockerignore, requirements.lock, code.",
    metavar="DIR",
)
@_image_prefix_option
def export_docker(
    workspace_file: Path, locations: tuple[str, ...], output: Path, image_prefix: str | None
) -> None:
    """Write a Docker build context per location (default: all), building environments
    as `env build` does.

    Each image installs exactly the distributions of the location's built environment
    (requirements.lock) on python:X.Y-slim, copies in its code and the child runtime, runs
    as a user of its own and serves on 0.0.0.0:4000. grpc_server entries are skipped.
    """
    from supervisor.export.docker import export_images
    from supervisor.export.images import check_prefix, repository
    from supervisor.export.selection import select
    from supervisor.workspace import check_paths, envs_dir_problem

    prefix = check_prefix(image_prefix)
    workspace = read_workspace(workspace_file)
    check_locations(workspace, locations)
    selection = select(workspace, locations)
    for message in selection.messages():
        say(message)
    if not selection.exported:
        say("no location here has an environment to export")
        return
    check_paths(workspace, [location.name for location in selection.exported])
    problem = envs_dir_problem(workspace)
    if problem:
        raise WorkspaceError(problem, str(workspace.path))
    live = say if sys.stderr.isatty() else None  # a build's progress, for a person only
    made = export_images(workspace, selection, output, say, live)
    for context in made.contexts:
        if context.code.size > LARGE_CODE:
            say(
                f"{context.location}: {render.size(context.code.size)} of code from"
                f" {context.code.folder} goes into its image; set its working_directory to"
                " the folder of its code alone to make it smaller"
            )
        for left in context.code.left_out:
            say(f"{context.location}: left out of the image: {left}")
        image = f"{repository(prefix, selection.labels[context.location])}:{context.tag}"
        click.echo(
            f"{context.location}: {context.path} (Python {context.python}, {context.pins}"
            f" distributions, {len(context.code.files)} code files);"
            f" docker build -t {image} {context.path}"
        )
    if made.failed:
        total = len(made.failed) + len(made.contexts)
        raise SupervisorError(
            f"{len(made.failed)} of {total} environments failed to build (see above);"
            " their locations were not exported"
        )


@export.command("kubernetes")
@workspace_option
@click.argument("locations", nargs=-1, shell_complete=complete_locations)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write DIR/manifests/<name>.yaml, DIR/workspace.yaml (grpc_server entries for the"
    " host side) and DIR/dagster-values.yaml (Dagster locations) [default: print the"
    " manifests, for `kubectl apply -f -`].",
)
@_image_prefix_option
@click.option(
    "--namespace",
    default="default",
    show_default=True,
    help="The namespace of the Deployments and Services (and of their DNS names).",
)
@click.option(
    "--tag",
    help="Tag every image TAG [default: each image's content tag, as `export docker` prints].",
)
def export_kubernetes(
    workspace_file: Path,
    locations: tuple[str, ...],
    output: Path | None,
    image_prefix: str | None,
    namespace: str,
    tag: str | None,
) -> None:
    """Write a Deployment and a Service per location (default: all), with native gRPC
    probes, memory limits and env; a grpc_server workspace for the host side; and Dagster
    Helm chart values for Dagster locations.

    Nothing is built: images are named as `export docker` names them. Location names
    become DNS-1123 names (`my_loc` -> `my-loc`); the original stays in an annotation and
    in the host-side workspace. What of a restart policy Kubernetes cannot do is said in a
    comment above each Deployment.
    """
    from supervisor.export.cluster import manifests_stream, plan_cluster, write_cluster
    from supervisor.export.images import check_prefix, check_tag
    from supervisor.export.names import check_namespace
    from supervisor.export.selection import select

    prefix = check_prefix(image_prefix)
    check_tag(tag)
    check_namespace(namespace)
    workspace = read_workspace(workspace_file)
    check_locations(workspace, locations)
    selection = select(workspace, locations)
    for message in [*selection.messages(), *selection.renamed()]:
        say(message)
    made = plan_cluster(workspace, selection, namespace, prefix, tag)
    if output is None:
        if made.manifests:
            click.echo(manifests_stream(made), nl=False)
        say("the host-side workspace and Helm values are written only with -o DIR")
        return
    for path in write_cluster(made, output):
        click.echo(str(path))
    if made.manifests:
        say(
            f"apply with: kubectl apply -f {output / 'manifests'}"
            " (after the images are built and pushed: supervisor export docker)"
        )
