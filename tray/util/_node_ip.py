"""Ray's ``ray.util.get_node_ip_address``."""

from __future__ import annotations

from .. import lowlevel

LOOPBACK = "127.0.0.1"


def get_node_ip_address() -> str:
    """The address of this process's node: what ``tray start --node-ip-address`` gave it, else
    loopback (tray binds nowhere else unless told). Its ``node:<ip>`` resource names the node."""
    return lowlevel.setting("node_ip") or LOOPBACK
