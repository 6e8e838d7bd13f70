"""Rich progress rendering for long library calls (training, evaluation). CLI-only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


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
            self.task = self.progress.add_task("train", total=total, stage=info["stage"], epoch=info["start_epoch"] + 1, loss=0.0, acc=0.0, S=0.0)
        elif event == "step" and self.task is not None:
            self.progress.update(self.task, advance=1, epoch=info["epoch"] + 1, loss=info["loss"], acc=info["acc"], S=info["S"])
        elif event == "epoch_end":
            mark = "*" if info.get("best") else " "
            stage = info.get("baseline") or info["stage"]
            reward = f" reward {info['val_reward']:.3f}" if "val_reward" in info else ""
            self.progress.console.print(
                f"  {stage:>6} epoch {info['epoch']:>3} {mark} train acc {info['train_acc']:.3f} S {info['train_S']:.2f} | "
                f"val acc {info['val_acc']:.3f} S {info['val_S']:.2f}{reward} ({info['time_s']:.0f} s)"
            )
