"""Presenting a report (`EvalReport`, or the redial protocol's `RedialReport`): a rich table,
a JSON file and a PNG bar chart."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rich.table import Table

from core.errors import ConfigError
from evaluation.harness import ModelResult

LOWER_IS_BETTER = frozenset({"RMSE", "MAE"})


class Report(Protocol):
    @property
    def results(self) -> Sequence[ModelResult]: ...

    @property
    def title(self) -> str: ...

    @property
    def plot_title(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def metric_names(report: Report) -> list[str]:
    return list(report.results[0].metrics) if report.results else []


def _best(report: Report, metric: str) -> float | None:
    values = [r.metrics[metric] for r in report.results if not math.isnan(r.metrics[metric])]
    if not values:
        return None
    return min(values) if metric in LOWER_IS_BETTER else max(values)


def results_table(report: Report) -> Table:
    """Models as rows, metrics as columns (the best value of each in bold), then seconds."""
    title = report.title
    table = Table(title=title, min_width=len(title))
    table.add_column("model", no_wrap=True)
    names = metric_names(report)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    best = {name: _best(report, name) for name in names}
    for result in report.results:
        cells = [result.name]
        for name in names:
            value = result.metrics[name]
            text = f"{value:.4f}"
            cells.append(f"[bold]{text}[/bold]" if value == best[name] else text)
        cells.append(f"{result.seconds:.2f}")
        table.add_row(*cells)
    return table


def check_output_path(path: Path) -> None:
    """Fail early, before a long run, if `path` cannot be written into."""
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist")


def write_json(report: Report, path: Path, command: Sequence[str] | None = None) -> None:
    """The report as JSON; with `command` (the command line that produced it), also that
    command and the code it ran (package version, git commit, uncommitted changes)."""
    check_output_path(path)
    data = report.to_json()
    if command is not None:
        from agents.toolbox_store import code_version

        data = {"command": shlex.join(command), "code": code_version(), **data}
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def write_plot(report: Report, path: Path) -> None:
    """A grouped bar chart (metrics on the x axis, one bar per model) as a PNG."""
    from matplotlib.figure import Figure  # a bare Figure renders with Agg, no pyplot state

    check_output_path(path)
    names = metric_names(report)
    models = report.results
    figure = Figure(figsize=(min(12.0, max(6.0, 2.0 + 0.25 * len(names) * len(models))), 4.5))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(models))
    for m, result in enumerate(models):
        xs = [x + (m - (len(models) - 1) / 2) * width for x in range(len(names))]
        axes.bar(xs, [result.metrics[n] for n in names], width, label=result.name)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("value")
    axes.set_title(report.plot_title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=120)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
