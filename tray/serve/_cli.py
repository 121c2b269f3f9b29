"""``tray serve run | deploy | status | shutdown``: Ray's ``serve`` commands.

``run`` deploys an import path (``module:app``) and, by default, stays in the foreground until
Ctrl-C, then shuts Serve down; ``deploy`` applies a Ray-schema config file to a running
cluster; ``status`` prints the applications as YAML; ``shutdown`` stops Serve.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import Any

HELP = "run and manage Serve applications"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=HELP, description="Run and manage Serve applications (Ray's `serve` CLI).")
    cmds = p.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    r = cmds.add_parser("run", help="deploy an application from an import path (module:app) and serve it")
    r.add_argument("import_path", help="module:attribute, an Application (bound deployment) or a Deployment")
    r.add_argument("--route-prefix", default="/", help='the HTTP route prefix (default "/")')
    r.add_argument("--name", default="default", help="the application's name")
    r.add_argument("--app-dir", default=".", help="directory to import the module from (default: .)")
    r.add_argument("--address", default=None, help="a running cluster (default: TRAY_ADDRESS, else a local one)")
    r.add_argument("--host", default=None, help="HTTP host (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=None, help="HTTP port (default 8000)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--blocking", dest="blocking", action="store_true", default=True,
                   help="stay in the foreground until Ctrl-C, then shut Serve down (the default)")
    g.add_argument("--non-blocking", dest="blocking", action="store_false",
                   help="return once deployed (needs a running cluster: --address)")
    r.set_defaults(func=_run)

    d = cmds.add_parser("deploy", help="deploy the applications of a config file to a running cluster")
    d.add_argument("config_file", help="a YAML file in Ray Serve's config schema")
    d.add_argument("--address", default="auto", help='the cluster (default "auto": the one on this machine)')
    d.set_defaults(func=_deploy)

    s = cmds.add_parser("status", help="print the applications, deployments and replica states")
    s.add_argument("--address", default="auto")
    s.set_defaults(func=_status)

    x = cmds.add_parser("shutdown", help="stop Serve: every application, the proxy and the controller")
    x.add_argument("--address", default="auto")
    x.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    x.set_defaults(func=_shutdown)


class CLIError(Exception):
    """An expected failure: printed as one line, exit status 1."""


def import_app(import_path: str, app_dir: str = ".") -> Any:
    """The Application ``module:attr`` names (a Deployment is bound with no arguments; a function
    returning an Application is called)."""
    from . import Application, Deployment

    module_name, sep, attr = import_path.partition(":")
    if not sep or not module_name or not attr:
        raise CLIError(f"import path {import_path!r} must look like 'module:attribute'")
    app_dir = os.path.abspath(app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CLIError(f"cannot import module {module_name!r} of {import_path!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr!r} (import path {import_path!r})") from None
    _pickle_by_value(module, app_dir)
    if isinstance(target, Deployment):
        target = target.bind()
    elif callable(target) and not isinstance(target, Application):
        target = target({}) if _takes_args(target) else target()
    if not isinstance(target, Application):
        raise CLIError(f"{import_path!r} is a {type(target).__name__}, not an Application (a deployment's .bind())")
    return target


def _takes_args(fn: Any) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return False


def _pickle_by_value(module: Any, app_dir: str) -> None:
    """Replicas run in other processes, which cannot import the user's module from the app dir:
    its classes travel by value (what Ray's working_dir does by shipping the directory)."""
    path = getattr(module, "__file__", None) or ""
    if os.path.abspath(path).startswith(app_dir + os.sep):
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)


def _connect(address: str | None, *, required: bool) -> None:
    import tray

    address = address or os.environ.get("TRAY_ADDRESS")
    if address:
        try:
            tray.init(address=address)
            return
        except Exception as exc:  # noqa: BLE001 - reported in one line
            if required or address != "auto":
                raise CLIError(f"cannot connect to the cluster at {address}: {exc}") from exc
    elif required:
        raise CLIError("no cluster address: start one with `tray start --head` or pass --address")
    try:
        tray.init(address="auto")
    except Exception:  # noqa: BLE001 - no cluster here: run one in this process
        tray.init()


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (CLIError, ValueError, TypeError, RuntimeError) as exc:
            print(f"tray serve {args.serve_command}: {exc}", file=sys.stderr)
            return 1
        finally:
            import tray

            if tray.is_initialized():
                tray.shutdown()

    return run


@_guard
def _run(args: argparse.Namespace) -> int:
    from . import api

    app = import_app(args.import_path, args.app_dir)
    _connect(args.address, required=not args.blocking)
    if args.host is not None or args.port is not None:
        opts: dict[str, Any] = {}
        if args.host is not None:
            opts["host"] = args.host
        if args.port is not None:
            opts["port"] = args.port
        api.start(http_options=opts)
    route_prefix = None if args.route_prefix in ("none", "None") else args.route_prefix
    api.run(app, name=args.name, route_prefix=route_prefix)
    proxies = api.status().proxies
    where = next(iter(proxies.values()), None)
    url = ""
    if where and route_prefix:
        url = f"http://{where.host}:{where.port}{route_prefix if route_prefix != '/' else ''}"
    print(f"Deployed app '{args.name}'" + (f" at {url}" if url else "") + ".", flush=True)
    if not args.blocking:
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Serving; Ctrl-C stops it.", flush=True)
    stop.wait()
    api.shutdown()
    print("Serve is shut down.", flush=True)
    return 0


def load_config(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc}") from exc
    if not isinstance(cfg, dict) or not isinstance(cfg.get("applications"), list):
        raise CLIError(f"{path}: a Serve config needs a list of 'applications'")
    for i, a in enumerate(cfg["applications"]):
        if not isinstance(a, dict) or "import_path" not in a:
            raise CLIError(f"{path}: applications[{i}] needs an import_path")
    return cfg


def apply_overrides(app: Any, overrides: list[dict[str, Any]]) -> Any:
    """The application graph with each named deployment's options replaced as the config says."""
    from .deployment import Application

    by_name = {}
    for o in overrides or []:
        if "name" not in o:
            raise CLIError("each entry of 'deployments' needs a name")
        by_name[o["name"]] = {k: v for k, v in o.items() if k != "name"}
    seen: set[str] = set()

    def visit(a: Application) -> Application:
        def sub(v: Any) -> Any:
            return visit(v) if isinstance(v, Application) else v

        dep = a.deployment
        if dep.name in by_name:
            seen.add(dep.name)
            dep = dep.options(**by_name[dep.name])
        return Application(dep, tuple(sub(x) for x in a.args), {k: sub(v) for k, v in a.kwargs.items()})

    out = visit(app)
    missing = set(by_name) - seen
    if missing:
        raise CLIError(f"the config overrides deployments the application does not have: {sorted(missing)}")
    return out


@_guard
def _deploy(args: argparse.Namespace) -> int:
    from . import api

    cfg = load_config(args.config_file)
    base = os.path.dirname(os.path.abspath(args.config_file))
    apps = []
    names = set()
    for a in cfg["applications"]:
        name = a.get("name", "default")
        if name in names:
            raise CLIError(f"application name {name!r} appears twice")
        names.add(name)
        route_prefix = a.get("route_prefix", "/")
        from .config import check_route_prefix

        check_route_prefix(route_prefix)
        app = import_app(a["import_path"], a.get("app_dir", base))
        apps.append((name, route_prefix, apply_overrides(app, a.get("deployments", []))))
    _connect(args.address, required=True)
    http = cfg.get("http_options")
    if http:
        api.start(http_options={k: v for k, v in http.items() if k in ("host", "port", "root_path")})
    for name, route_prefix, app in apps:
        api.run(app, name=name, route_prefix=route_prefix)
        print(f"Deployed app '{name}'.", flush=True)
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    import yaml

    from . import api

    _connect(args.address, required=True)
    print(yaml.safe_dump(api.status().to_dict(), sort_keys=False), end="")
    return 0


@_guard
def _shutdown(args: argparse.Namespace) -> int:
    from . import api

    _connect(args.address, required=True)
    api.shutdown()
    print("Serve is shut down.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m tray.serve._cli ...`` (the same as ``tray serve ...``)."""
    parser = argparse.ArgumentParser(prog="tray")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
