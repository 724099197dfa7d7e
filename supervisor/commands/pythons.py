"""`supervisor pythons`: the interpreters found on this machine."""

from __future__ import annotations

import click

from supervisor import render
from supervisor.commands.common import json_option
from supervisor.pythons import discover, pythons_json, pythons_table


@click.command("pythons")
@json_option
@click.option("--refresh", is_flag=True, help="Probe every interpreter again.")
def pythons(as_json: bool, refresh: bool) -> None:
    """List the Python interpreters found (PATH, pyenv, asdf, uv, /usr/bin, /usr/local/bin)."""
    found = discover(refresh=refresh)
    click.echo(render.to_json(pythons_json(found)) if as_json else pythons_table(found))
