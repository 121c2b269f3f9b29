"""The deployment state manager's decisions (pure): which replicas to start and stop, and the
status a deployment shows, given its target and what runs.

The controller feeds it the facts (each replica's state and code version, how many
constructors failed) and carries out the plan; nothing here does I/O, so the rules are
tested with hypothesis against a small model.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

STARTING, RUNNING, STOPPING = "STARTING", "RUNNING", "STOPPING"
MAX_CONSTRUCTOR_FAILURES = 3  # in a row, with no replica of the version up: DEPLOY_FAILED


@attrs.frozen
class ReplicaFact:
    state: str  # STARTING, RUNNING or STOPPING
    version: str  # the code version it runs
    seq: int  # start order (stopping prefers the newest surplus, the oldest outdated)


@attrs.frozen
class Plan:
    start: int  # new replicas of the current version to start
    stop: tuple[str, ...]  # replica ids to stop gracefully


def plan(target: int, version: str, replicas: Mapping[str, ReplicaFact], failed: bool) -> Plan:
    """Reach ``target`` replicas of ``version``: start what is missing (unless the version
    failed to construct), stop surplus replicas (those still starting first, then the newest),
    and replace outdated ones as new ones come up (a rolling update: the total in service
    never drops below the target while new replicas start)."""
    live = {rid: f for rid, f in replicas.items() if f.state != STOPPING}
    new = {rid: f for rid, f in live.items() if f.version == version}
    old = {rid: f for rid, f in live.items() if f.version != version}
    start = 0 if failed else max(0, target - len(new))
    stop: list[str] = []
    surplus = len(new) - target
    if surplus > 0:
        order = sorted(new, key=lambda r: (new[r].state == RUNNING, -new[r].seq))
        stop.extend(order[:surplus])
    new_running = sum(1 for f in new.values() if f.state == RUNNING)
    if old:
        # outdated replicas go as soon as enough new ones serve; when the new version cannot
        # come up (failed) the old ones keep serving
        if failed and new_running == 0:
            excess = 0
        else:
            old_running = sum(1 for f in old.values() if f.state == RUNNING)
            excess = old_running + min(new_running, target) - target
            excess += sum(1 for f in old.values() if f.state == STARTING)
            if target == 0:
                excess = len(old)
        order = sorted(old, key=lambda r: (old[r].state == RUNNING, old[r].seq))
        stop.extend(order[:max(0, min(excess, len(old)))])
    return Plan(start=start, stop=tuple(stop))


def status(target: int, version: str, replicas: Mapping[str, ReplicaFact], failed: bool, healthy_once: bool,
           scaling: str | None) -> str:
    """Ray's DeploymentStatus for these facts: DEPLOY_FAILED, UPDATING, HEALTHY, UNHEALTHY,
    UPSCALING or DOWNSCALING. ``scaling``: "up"/"down" when the autoscaler moved the target."""
    if failed:
        return "DEPLOY_FAILED"
    running_new = sum(1 for f in replicas.values() if f.state == RUNNING and f.version == version)
    others = sum(1 for f in replicas.values() if f.state != RUNNING or f.version != version)
    if running_new == target and others == 0:
        return "HEALTHY"
    if not healthy_once:
        return "UPDATING"
    if scaling == "up":
        return "UPSCALING"
    if scaling == "down":
        return "DOWNSCALING"
    if running_new < target:
        return "UNHEALTHY" if not any(f.version != version for f in replicas.values()) else "UPDATING"
    return "UPDATING"


def app_status(deployment_statuses: Mapping[str, str], deleting: bool) -> str:
    """Ray's ApplicationStatus from its deployments' statuses."""
    if deleting:
        return "DELETING"
    values = set(deployment_statuses.values())
    if not values:
        return "NOT_STARTED"
    if "DEPLOY_FAILED" in values:
        return "DEPLOY_FAILED"
    if values <= {"HEALTHY", "UPSCALING", "DOWNSCALING"}:
        return "RUNNING"
    if "UNHEALTHY" in values:
        return "UNHEALTHY"
    return "DEPLOYING"
