"""``tray dashboard``: where this machine's cluster dashboard is, and how to sign in."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="print the URL of this machine's cluster dashboard",
                       description="Print the URL of the dashboard of the cluster running on this machine "
                                   "(a `tray start --head` head first, else the newest driver's own node).")
    p.add_argument("--token", action="store_true", help="also print the cluster token to sign in with")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..job_submission import local_dashboards

    found = local_dashboards()
    if not found:
        print("tray dashboard: no cluster with a dashboard runs on this machine (tray start --head starts one)",
              file=sys.stderr)
        return 1
    print(found[0]["url"])
    if args.token:
        print(f"token: {found[0]['token']}")
    return 0
