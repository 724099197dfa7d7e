"""The private socket folder of a workspace: mode 0700 whatever the umask or what was there."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.errors import SupervisorError
from supervisor.supervision import statefile
from tests.helpers import remove, short_tempdir


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private $XDG_RUNTIME_DIR, so that socket folders land where the test looks."""
    path = short_tempdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    remove(path)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets every mode through, so that only the code decides the mode."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_socket_folder_is_private_from_its_creation(
    runtime_dir: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made 0700, not made 0700 afterwards: no moment in which others may put a socket there."""
    created: dict[Path, int] = {}
    real_mkdir = os.mkdir

    def mkdir(path: os.PathLike[str] | str, mode: int = 0o777, **kwargs: object) -> None:
        real_mkdir(path, mode, **kwargs)
        created[Path(path)] = stat.S_IMODE(os.lstat(path).st_mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    folder = statefile.socket_dir(runtime_dir / "workspace.yaml")
    assert folder.parent == runtime_dir
    assert folder in created, f"the socket folder was not made by mkdir: {created}"
    assert created[folder] == 0o700, f"{folder} was created with mode {created[folder]:o}"
    assert mode(folder) == 0o700, f"{folder} has mode {mode(folder):o}"


def test_an_existing_open_socket_folder_is_made_private(runtime_dir: Path) -> None:
    workspace = runtime_dir / "workspace.yaml"
    folder = statefile.socket_dir(workspace, create=False)
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    assert statefile.socket_dir(workspace) == folder
    assert mode(folder) == 0o700, f"{folder} has mode {mode(folder):o}"


def test_a_symlink_in_place_of_the_socket_folder_is_refused(runtime_dir: Path) -> None:
    workspace = runtime_dir / "workspace.yaml"
    elsewhere = runtime_dir / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    statefile.socket_dir(workspace, create=False).symlink_to(elsewhere)
    with pytest.raises(SupervisorError, match="not a folder of ours"):
        statefile.socket_dir(workspace)


def test_threads_writing_one_private_file_do_not_collide(tmp_path: Path) -> None:
    """Two locations preparing at once both write Dagster's instance file."""
    from concurrent.futures import ThreadPoolExecutor

    from supervisor.private import write_private

    target = tmp_path / "dagster.yaml"

    def write(n: int) -> None:
        for _ in range(200):
            write_private(target, f"writer {n}\n")

    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(write, n) for n in range(4)]:
            done.result()  # raises what a writer met
    assert target.read_text().startswith("writer ")
    assert [p.name for p in tmp_path.iterdir()] == ["dagster.yaml"]
