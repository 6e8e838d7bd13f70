"""Rich progress rendering for long library calls (planning, training, evaluation). CLI-only.

Every command draws its progress on stderr through :data:`console`, with :class:`BlockProgress` for a
library call that reports ``(done, total)`` and :class:`TrainProgress` for training's events.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class BlockProgress:
    """A transient bar on stderr for a call that takes a ``progress(done, total)`` callback: pass the
    instance itself as the callback, inside ``with``. Drawn only when ``show`` and stderr is a terminal."""

    def __init__(self, label: str = "inference", unit: str = "blocks", *, show: bool = True) -> None:
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (show and console.is_terminal),
        )
        self.task = self.progress.add_task(unit, total=None)

    def __enter__(self) -> "BlockProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The bar off the terminal for the block (a prompt), back after it."""
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()


class TrainProgress:
    """Callback for :func:`zoomplan.train.runner.train`: one bar per stage with live loss, acc and S."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]:>6}[/] ep {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.3f} S {task.fields[S]:.1f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None

    def __enter__(self) -> "TrainProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "stage_start":
            total = max(1, (info["epochs"] - info["start_epoch"]) * info["steps"])
            self.task = self.progress.add_task(
                "train", total=total, stage=info["stage"], epoch=info["start_epoch"] + 1, loss=0.0, acc=0.0, S=0.0
            )
        elif event == "step" and self.task is not None:
            self.progress.update(
                self.task, advance=1, epoch=info["epoch"] + 1, loss=info["loss"], acc=info["acc"], S=info["S"]
            )
        elif event == "epoch_end":
            mark = "*" if info.get("best") else " "
            stage = info.get("baseline") or info["stage"]
            reward = f" reward {info['val_reward']:.3f}" if "val_reward" in info else ""
            self.progress.console.print(
                f"  {stage:>6} epoch {info['epoch']:>3} {mark} train acc {info['train_acc']:.3f} S "
                f"{info['train_S']:.2f} | "
                f"val acc {info['val_acc']:.3f} S {info['val_S']:.2f}{reward} ({info['time_s']:.0f} s)"
            )
