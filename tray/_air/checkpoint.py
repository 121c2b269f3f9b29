"""``Checkpoint``: a directory of files, local or behind a URI, with JSON metadata (Ray 2.x's
``ray.train.Checkpoint``). Tune and Train hand these between user code and storage; the bytes
never travel through tray's object store, only the path does.

Local paths are used in place. A URI (``s3://``, ``gs://``, ``hdfs://``, or any fsspec protocol
such as ``memory://``) goes through a ``pyarrow.fs`` filesystem, imported only then.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

_METADATA_FILE = ".metadata.json"


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def resolve_filesystem(path: str, filesystem: Any = None) -> tuple[Any, str]:
    """``(pyarrow filesystem, path inside it)`` for a URI or local path (pyarrow needed for URIs)."""
    from ..lowlevel import require

    fs_mod = require("pyarrow.fs", "tune")
    if filesystem is not None:
        return filesystem, path
    if path.startswith("file://"):
        return fs_mod.LocalFileSystem(), path[len("file://"):]
    if not _is_uri(path):
        return fs_mod.LocalFileSystem(), os.path.abspath(path)
    try:
        return fs_mod.FileSystem.from_uri(path)
    except Exception:  # noqa: BLE001 - not a scheme pyarrow knows natively: try fsspec
        fsspec = require("fsspec", "tune")
        fs, inner = fsspec.core.url_to_fs(path)
        return fs_mod.PyFileSystem(fs_mod.FSSpecHandler(fs)), inner


def _is_local(filesystem: Any) -> bool:
    return filesystem is None or type(filesystem).__name__ == "LocalFileSystem"


class Checkpoint:
    """A reference to a checkpoint directory: ``path`` on ``filesystem`` (local when None)."""

    def __init__(self, path: str | os.PathLike, filesystem: Any = None) -> None:
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise ValueError(f"Checkpoint needs a directory path or URI, got {path!r}")
        if filesystem is None and _is_uri(path):
            filesystem, path = resolve_filesystem(path)
        elif filesystem is None:
            path = os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)
        self.path: str = path
        self._filesystem = filesystem

    @property
    def filesystem(self) -> Any:
        """The ``pyarrow.fs.FileSystem`` holding ``path`` (LocalFileSystem for a local path)."""
        if self._filesystem is None:
            self._filesystem = resolve_filesystem(self.path)[0]
        return self._filesystem

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        """A checkpoint of the directory at ``path`` (a local directory, or a URI)."""
        p = os.fspath(path)
        if not _is_uri(p) and not os.path.isdir(p[7:] if p.startswith("file://") else p):
            raise ValueError(f"Checkpoint.from_directory: {p!r} is not a directory")
        return cls(p)

    @property
    def _local(self) -> bool:
        return _is_local(self._filesystem)

    def to_directory(self, path: str | os.PathLike | None = None) -> str:
        """Copy the checkpoint's files into ``path`` (default: a new temp dir); returns it."""
        dest = os.fspath(path) if path is not None else os.path.join(
            tempfile.gettempdir(), f"checkpoint_tmp_{uuid.uuid4().hex}")
        os.makedirs(dest, exist_ok=True)
        if self._local:
            if os.path.abspath(dest) != self.path:
                shutil.copytree(self.path, dest, dirs_exist_ok=True)
        else:
            fs_mod = __import__("pyarrow.fs", fromlist=["copy_files"])
            fs_mod.copy_files(self.path, dest, source_filesystem=self.filesystem,
                              destination_filesystem=fs_mod.LocalFileSystem())
        return dest

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """A local directory with the checkpoint's files: the directory itself when local (do not
        modify it), else a temporary copy removed on exit."""
        if self._local:
            yield self.path
            return
        tmp = self.to_directory()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # metadata: a small JSON dict kept inside the checkpoint directory
    def get_metadata(self) -> dict[str, Any]:
        """The metadata dict stored with the checkpoint ({} when none)."""
        if self._local:
            file = os.path.join(self.path, _METADATA_FILE)
            if not os.path.exists(file):
                return {}
            with open(file) as f:
                return json.load(f)
        fs = self.filesystem
        file = f"{self.path.rstrip('/')}/{_METADATA_FILE}"
        if fs.get_file_info(file).type.name == "NotFound":
            return {}
        with fs.open_input_stream(file) as f:
            return json.loads(f.read().decode())

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the metadata (it must be JSON-serializable)."""
        if not isinstance(metadata, dict):
            raise TypeError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}")
        data = json.dumps(metadata).encode()
        if self._local:
            with open(os.path.join(self.path, _METADATA_FILE), "wb") as f:
                f.write(data)
            return
        with self.filesystem.open_output_stream(f"{self.path.rstrip('/')}/{_METADATA_FILE}") as f:
            f.write(data)

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the stored metadata."""
        merged = self.get_metadata()
        merged.update(metadata)
        self.set_metadata(merged)

    def __repr__(self) -> str:
        return f"Checkpoint(filesystem={'local' if self._local else type(self._filesystem).__name__}, path={self.path})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path and other._local == self._local

    def __hash__(self) -> int:
        return hash(self.path)

    def __reduce__(self) -> tuple[Any, ...]:
        # local checkpoints travel as paths; a remote one re-resolves its URI on arrival
        if self._local:
            return (Checkpoint, (self.path,))
        return (Checkpoint, (self.path, self._filesystem))


def persist_directory(src: str, dest: str) -> Checkpoint:
    """Copy the local directory ``src`` to ``dest`` (a local path or URI) and return a
    checkpoint of the copy: how a reported checkpoint reaches the run's storage."""
    if _is_uri(dest):
        fs, inner = resolve_filesystem(dest)
        fs_mod = __import__("pyarrow.fs", fromlist=["copy_files"])
        fs.create_dir(inner, recursive=True)
        fs_mod.copy_files(src, inner, source_filesystem=fs_mod.LocalFileSystem(), destination_filesystem=fs)
        return Checkpoint(inner, fs)
    if os.path.abspath(src) != os.path.abspath(dest):
        shutil.copytree(src, dest, dirs_exist_ok=True)
    return Checkpoint(dest)
