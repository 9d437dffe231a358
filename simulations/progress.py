"""Progress on the terminal. On a TTY a rich bar (rich ships with fastmcp, so nothing is
added) that names the step in flight; elsewhere (CI, pipes, tests) one plain line per
stage, which reads well in a log."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column

from simulations.buyer import Step


class ProgressView:
    def __init__(self, total: int, *, interactive: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if self.interactive:
            self._bar = Progress(
                TextColumn("[bold]{task.fields[stage]:<10}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn(
                    "{task.description}",
                    table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
                ),
                console=Console(stderr=True),
                expand=True,
            )

    def __enter__(self) -> ProgressView:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total, stage="starting")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def stage(self, stage: str, detail: str = "") -> None:
        """A stage is over (setup, a flight day, the reports): advance the bar."""
        self.done += 1
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, stage=stage, description=detail)
        else:
            print(f"[{self.done:>2}/{self.total}] {stage:<10} {detail}", file=sys.stderr)

    def step(self, buyer: str, step: Step) -> None:
        """Every call of every buyer: shown live on the bar; failures always printed."""
        if not step.ok:
            message = f"  ✗ {buyer} step {step.n} {step.tool}: {(step.error or {}).get('code')}"
            if self._bar is not None:
                self._bar.console.print(message)
            else:
                print(message, file=sys.stderr)
        elif self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=f"{buyer} · {step.tool} · {step.label}")
