"""The runtime_env machinery jobs use (checking, packing, uploading, preparing on the head),
the same that tasks and actors use: it lives below the libraries (``tray.lowlevel.runtime_envs``)
so every node can prepare one; these names are kept for the job API's callers."""

from __future__ import annotations

from ..lowlevel import runtime_envs as _impl

PKG_NAMESPACE = _impl.PKG_NAMESPACE
PKG_SCHEME = _impl.PKG_SCHEME
MAX_PACKAGE_BYTES = _impl.MAX_PACKAGE_BYTES
WORKER_ENV_VAR = _impl.WORKER_ENV_VAR
JOB_ENV_VAR = _impl.JOB_ENV_VAR
Prepared = _impl.Prepared
validate = _impl.validate
merge = _impl.merge
requirements = _impl.requirements
pack = _impl.pack
package_uri = _impl.package_uri
upload = _impl.upload
prepare = _impl.prepare
apply_env = _impl.apply_env

__all__ = ["JOB_ENV_VAR", "MAX_PACKAGE_BYTES", "PKG_NAMESPACE", "PKG_SCHEME", "WORKER_ENV_VAR", "Prepared",
           "apply_env", "merge", "pack", "package_uri", "prepare", "requirements", "upload", "validate"]
