"""Downloads with a progress bar: one file or a whole tree from the client's artifact store.

The transfer itself is the artifact layer's (``get_file`` / ``materialize_tree``, verified against
digests, the destination appearing whole or not at all) on ``client.artifacts`` — the local store
when embedded, the server's blob API when remote. The client's store is wrapped only to count the
objects as they land, which drives a rich progress bar (bytes, and files done for a tree).
Files are copied, never hard-linked to the store, so the user may edit what they downloaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from shipyard.artifacts import load_tree, materialize_tree
from shipyard.cli.output import State


@dataclass
class Downloaded:
    digest: str
    dest: Path
    is_tree: bool
    files: int
    size: int


class _CountingStore:
    """Forwards everything to the wrapped store; reports each object written by ``get_file``."""

    def __init__(self, store: Any, on_file: Callable[[str], None]):
        self._store = store
        self._on_file = on_file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_file(self, digest: str, dest_path: str, verify: bool = True) -> None:
        self._store.get_file(digest, dest_path, verify=verify)
        self._on_file(digest)


def _progress(st: State) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=st.err,
        disable=not st.err.is_terminal,
        transient=False,
    )


class _Counter:
    def __init__(self, progress: Progress, task: TaskID, label: str, files: int, sizes: dict[str, int]):
        self.progress, self.task, self.label, self.files, self.sizes = progress, task, label, files, sizes
        self.done = 0
        self.lock = threading.Lock()

    def __call__(self, digest: str) -> None:
        with self.lock:
            self.done += 1
            description = f"{self.label} {self.done}/{self.files} files" if self.files != 1 else self.label
            self.progress.update(self.task, advance=self.sizes.get(digest, 0), description=description)


def download(
    st: State, digest: str, is_tree: bool, dest: str | os.PathLike[str], label: str, size: int = 0
) -> Downloaded:
    """Materialise the object or tree ``digest`` at ``dest`` with a progress bar on stderr.

    ``size`` is the object's size for a single file (the tree's manifest gives it for a tree).
    """
    store = st.client.artifacts
    target = Path(dest).expanduser().absolute()
    if is_tree:
        tree = load_tree(store, digest)
        sizes = {e.digest: e.size for e in tree.entries.values()}
        files, size = tree.file_count, tree.total_size
    else:
        sizes, files = {digest: size}, 1
    with _progress(st) as progress:
        task = progress.add_task(f"{label} 0/{files} files" if is_tree else label, total=size or None)
        counting = _CountingStore(store, _Counter(progress, task, label, files, sizes))
        if is_tree:
            materialize_tree(counting, digest, target, link=False)
        else:
            counting.get_file(digest, str(target))
        progress.update(task, completed=size)
    return Downloaded(digest=digest, dest=target, is_tree=is_tree, files=files, size=size)
