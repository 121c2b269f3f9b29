"""Result loggers (Ray's ``ray.tune.logger``). JSON (``result.json``) and CSV (``progress.csv``)
are always written by the controller; TensorBoard event files come from ``TBXLoggerCallback``,
added by default when tensorboardX is installed (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`` turns
that off)."""

from ..callback import LoggerCallback, TBXLoggerCallback

__all__ = ["LoggerCallback", "TBXLoggerCallback"]
