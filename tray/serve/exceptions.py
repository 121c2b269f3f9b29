"""Serve's errors, at Ray's names (``ray.serve.exceptions``)."""

from __future__ import annotations


class RayServeException(Exception):
    """Base of Serve's own errors (bad config, a deployment that failed, Serve not running)."""


class BackPressureError(RayServeException):
    """A request was refused: the deployment's queue holds ``max_queued_requests`` already
    (the HTTP proxy answers 503)."""

    def __init__(self, *, num_queued_requests: int, max_queued_requests: int) -> None:
        super().__init__(f"Request dropped due to backpressure (num_queued_requests={num_queued_requests}, "
                         f"max_queued_requests={max_queued_requests}).")
        self.num_queued_requests = num_queued_requests
        self.max_queued_requests = max_queued_requests

    def __reduce__(self) -> tuple[object, ...]:
        return (_backpressure, (self.num_queued_requests, self.max_queued_requests))


def _backpressure(n: int, m: int) -> BackPressureError:
    return BackPressureError(num_queued_requests=n, max_queued_requests=m)


class DeploymentUnavailableError(RayServeException):
    """The deployment has no replica to run the request and will not get one (failed or deleted)."""


class RequestCancelledError(RayServeException):
    """The request was cancelled before it finished."""
