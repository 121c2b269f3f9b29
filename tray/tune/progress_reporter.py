"""Console progress (Ray's ``CLIReporter``): a table of trials — status, config, latest
metrics — redrawn in place on a terminal, printed as plain blocks otherwise."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

DEFAULT_METRICS = ("training_iteration", "time_total_s")


class ProgressReporter:
    def should_report(self, trials: list[Any], done: bool = False) -> bool:
        return True

    def report(self, trials: list[Any], done: bool, *sys_info: str) -> None:
        raise NotImplementedError

    def setup(self, start_time: float | None = None, total_samples: int | None = None, metric: str | None = None,
              mode: str | None = None, **kwargs: Any) -> None:
        pass


class CLIReporter(ProgressReporter):
    def __init__(self, metric_columns: list[str] | dict[str, str] | None = None,
                 parameter_columns: list[str] | dict[str, str] | None = None, total_samples: int | None = None,
                 max_progress_rows: int = 20, max_error_rows: int = 20, max_column_length: int = 20,
                 max_report_frequency: float = 5, infer_limit: int = 3, print_intermediate_tables: bool | None = None,
                 metric: str | None = None, mode: str | None = None, sort_by_metric: bool = False,
                 out: TextIO | None = None) -> None:
        self._metric_columns = metric_columns
        self._parameter_columns = parameter_columns
        self._max_rows = max_progress_rows
        self._max_error_rows = max_error_rows
        self._max_col = max_column_length
        self._frequency = max_report_frequency
        self._infer_limit = infer_limit
        self._metric, self._mode = metric, mode
        self._sort = sort_by_metric
        self._intermediate = print_intermediate_tables is not False
        self._out = out
        self._last = 0.0
        self._drawn_lines = 0
        self._last_key = ""
        self._total_samples = total_samples
        self._start = time.time()

    def setup(self, start_time: float | None = None, total_samples: int | None = None, metric: str | None = None,
              mode: str | None = None, **kwargs: Any) -> None:
        self._start = start_time or time.time()
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        self._total_samples = self._total_samples or total_samples

    def add_metric_column(self, metric: str, representation: str | None = None) -> None:
        if isinstance(self._metric_columns, dict):
            self._metric_columns[metric] = representation or metric
        else:
            self._metric_columns = [*(self._metric_columns or []), metric]

    def should_report(self, trials: list[Any], done: bool = False) -> bool:
        now = time.monotonic()
        if done or (self._intermediate and now - self._last >= self._frequency):
            self._last = now
            return True
        return False

    def _stream(self) -> TextIO:
        return self._out or sys.stdout

    def report(self, trials: list[Any], done: bool, *sys_info: str) -> None:
        text = self.render(trials, done, *sys_info)
        key = "\n".join(ln for ln in text.splitlines() if not ln.startswith("Current time:"))
        if done and key == self._last_key:
            return  # the run ended just after a table showing the same: do not print it twice
        self._last_key = key
        stream = self._stream()
        live = hasattr(stream, "isatty") and stream.isatty()
        if live and self._drawn_lines:
            stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")  # back to the table's top, clear below
        stream.write(text + "\n")
        stream.flush()
        self._drawn_lines = text.count("\n") + 1 if live and not done else 0

    def _columns(self, trials: list[Any]) -> tuple[list[str], list[str]]:
        if self._metric_columns:
            metrics = list(self._metric_columns)
        else:
            seen: list[str] = []
            for t in trials:
                for k, v in t.last_result.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in seen and k not in (
                            "pid", "timestamp", "time_this_iter_s", "time_since_restore", "iterations_since_restore",
                            "done", "timesteps_since_restore") and not k.startswith("_"):
                        seen.append(k)
            user = [k for k in seen if k not in DEFAULT_METRICS and k not in ("timesteps_total", "episodes_total")]
            metrics = (user[: self._infer_limit] + [k for k in DEFAULT_METRICS if k in seen])
        if self._parameter_columns:
            params = list(self._parameter_columns)
        else:
            params = sorted({k for t in trials for k in t.evaluated_params})
        return metrics, params

    def render(self, trials: list[Any], done: bool, *sys_info: str) -> str:
        counts = Counter(t.status for t in trials)
        total = self._total_samples if self._total_samples and self._total_samples < 10**8 else len(trials)
        elapsed = time.time() - self._start
        head = ["== Status ==", f"Current time: {time.strftime('%Y-%m-%d %H:%M:%S')} (running for "
                f"{time.strftime('%H:%M:%S', time.gmtime(elapsed))})", *sys_info,
                f"Number of trials: {len(trials)}/{total} ("
                + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")"]
        metrics, params = self._columns(trials)
        shown = list(trials)
        if self._sort and self._metric:
            shown.sort(key=lambda t: t.last_result.get(self._metric, float("-inf")), reverse=self._mode != "min")
        shown = shown[: self._max_rows] if not done else shown
        rows = [["Trial name", "status", *params, *metrics]]
        for t in shown:
            row = [str(t), t.status]
            row += [_fmt(t.evaluated_params.get(p, _dig(t.config, p)), self._max_col) for p in params]
            row += [_fmt(t.last_result.get(m, ""), self._max_col) for m in metrics]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        table.insert(1, "  ".join("-" * w for w in widths))
        errors = [t for t in trials if t.status == "ERROR"][: self._max_error_rows]
        tail = []
        if errors:
            tail = ["Number of errored trials: " + str(len(errors))] + [f"  {t}: {t.local_path}/error.txt"
                                                                       for t in errors]
        if len(trials) > len(shown):
            tail.append(f"... {len(trials) - len(shown)} more trials not shown")
        return "\n".join(head + table + tail)


def _dig(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return node


def _fmt(value: Any, limit: int) -> str:
    if isinstance(value, float):
        text = f"{value:.5g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JupyterNotebookReporter(CLIReporter):
    """Ray's notebook reporter: here the same table, redrawn in place where the output supports it."""
