"""Where a run's files live: ``storage_path/name/`` on a local disk or any pyarrow/fsspec
filesystem, holding ``checkpoint_<index>/`` directories (every rank's files merged into one),
the checkpoint bookkeeping and the trainer needed by ``restore``.

Every worker writes its own checkpoint files straight to storage (nothing goes through the
controller or tray's object store), as Ray Train does.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from .._air.checkpoint import Checkpoint, _is_uri, resolve_filesystem

__all__ = ["StorageContext", "join"]

DEFAULT_STORAGE = os.path.join("~", "tray_results")


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if _is_uri(base) else os.path.join(base, *parts)


class StorageContext:
    """The run's directory (``run_path``, a local path or URI) and the filesystem behind it."""

    def __init__(self, run_path: str, experiment_name: str, trial_name: str | None = None) -> None:
        if not _is_uri(run_path):
            run_path = os.path.abspath(os.path.expanduser(run_path))
        self.run_path = run_path
        self.experiment_name = experiment_name
        self.trial_name = trial_name or experiment_name
        self._fs: Any = None
        self._fs_path: str | None = None

    @classmethod
    def for_run(cls, storage_path: str | None, name: str) -> StorageContext:
        base = storage_path or os.environ.get("TRAY_STORAGE") or DEFAULT_STORAGE
        return cls(join(base if _is_uri(base) else os.path.expanduser(base), name), name)

    @property
    def local(self) -> bool:
        return not _is_uri(self.run_path)

    @property
    def filesystem(self) -> Any:
        """The pyarrow filesystem (resolved on first use; local runs need no pyarrow)."""
        if self._fs is None:
            self._fs, self._fs_path = resolve_filesystem(self.run_path)
        return self._fs

    @property
    def fs_path(self) -> str:
        self.filesystem  # noqa: B018 - resolves _fs_path
        assert self._fs_path is not None
        return self._fs_path

    def __getstate__(self) -> dict[str, Any]:  # filesystems are re-resolved where the context lands
        return {"run_path": self.run_path, "experiment_name": self.experiment_name, "trial_name": self.trial_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["run_path"], state["experiment_name"], state["trial_name"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"StorageContext({self.run_path!r})"

    # ---- paths

    def path(self, *parts: str) -> str:
        return join(self.run_path, *parts)

    def _inner(self, *parts: str) -> str:
        return "/".join([self.fs_path.rstrip("/"), *parts])

    @staticmethod
    def checkpoint_dir_name(index: int) -> str:
        return f"checkpoint_{index:06d}"

    def checkpoint_at(self, name: str) -> Checkpoint:
        return Checkpoint(self.path(name)) if self.local else Checkpoint(self._inner(name), self.filesystem)

    # ---- files

    def makedirs(self) -> None:
        if self.local:
            os.makedirs(self.run_path, exist_ok=True)
        else:
            self.filesystem.create_dir(self.fs_path, recursive=True)

    def persist_checkpoint_files(self, checkpoint: Checkpoint, name: str) -> None:
        """Copy (merge) ``checkpoint``'s files into ``checkpoint_<name>/`` of the run."""
        dest = self.checkpoint_at(name)
        if checkpoint == dest:
            return
        if self.local and _is_local(checkpoint):
            shutil.copytree(checkpoint.path, dest.path, dirs_exist_ok=True)
            return
        import pyarrow.fs as pafs

        dest_fs = dest.filesystem
        dest_fs.create_dir(dest.path, recursive=True)
        pafs.copy_files(checkpoint.path, dest.path, source_filesystem=checkpoint.filesystem,
                        destination_filesystem=dest_fs)

    def delete(self, name: str) -> None:
        if self.local:
            shutil.rmtree(self.path(name), ignore_errors=True)
        else:
            try:
                self.filesystem.delete_dir(self._inner(name))
            except (FileNotFoundError, OSError):
                pass

    def exists(self, name: str) -> bool:
        if self.local:
            return os.path.exists(self.path(name))
        return self.filesystem.get_file_info(self._inner(name)).type.name != "NotFound"

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file of the run atomically where the filesystem allows (local: rename)."""
        if self.local:
            os.makedirs(self.run_path, exist_ok=True)
            tmp = self.path(name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(name))
            return
        self.filesystem.create_dir(self.fs_path, recursive=True)
        with self.filesystem.open_output_stream(self._inner(name)) as f:
            f.write(data)

    def read_bytes(self, name: str) -> bytes:
        if self.local:
            with open(self.path(name), "rb") as f:
                return f.read()
        with self.filesystem.open_input_stream(self._inner(name)) as f:
            return f.read()


def _is_local(checkpoint: Checkpoint) -> bool:
    return type(checkpoint.filesystem).__name__ == "LocalFileSystem"
