"""Progress bars for the long benchmark steps (rich), safe to advance from any thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from services.observability.progress import progress_bars as rich_bars


class Progress:
    """One bar per step; a step's bar is finished when the step ends."""

    def __init__(self, bars: RichProgress) -> None:
        self.bars = bars

    def task(self, name: str, total: int) -> TaskID:
        return self.bars.add_task(name, total=total)

    def advance(self, task: TaskID, amount: int = 1) -> None:
        self.bars.advance(task, amount)

    def ticker(self, task: TaskID) -> Callable[[int], None]:
        return lambda amount: self.bars.advance(task, amount)

    def finish(self, task: TaskID) -> None:
        total = self.bars.tasks[task].total if task in self.bars.task_ids else None
        self.bars.update(task, completed=total)

    def note(self, text: str) -> None:
        self.bars.console.print(text)


@contextmanager
def progress_bars(console: Console) -> Iterator[Progress]:
    bars = rich_bars(console, label="{task.description:<12}")
    with bars:
        yield Progress(bars)
