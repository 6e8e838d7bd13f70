"""The training driver: runs the stages of a recipe, keeps the best checkpoint, resumes, scales out.

What a run directory holds, and how a run starts or continues one: :mod:`zoomplan.train.rundir`;
Ft-2's out-of-fold LR classifiers: :mod:`zoomplan.train.folds`; the baselines: :mod:`zoomplan.train.baselines`;
what each stage needs and produces, and building its models: :mod:`zoomplan.train.stages`.

Randomness: every epoch re-seeds its shuffling, augmentation and policy sampling from
(seed, stage, epoch), so a resumed run repeats exactly the epochs an uninterrupted one would.
A kill at any point (SIGKILL included) loses at most the epoch in progress: ``--resume`` restarts it
from ``last.pt`` (written after each epoch) and drops any metrics row of it that was already logged.
Several processes: launched by ``torchrun``, which sets RANK/WORLD_SIZE; gradients are averaged by
DistributedDataParallel (gloo on CPU, NCCL on CUDA) and rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from zoomplan.data.lowres import Radiometry, Streams
from zoomplan.device import autocast, eval_mode, grad_scaler
from zoomplan.train.baselines import FILENAME, finetune_baselines
from zoomplan.train.checkpoint import load_state, save_checkpoint, save_state
from zoomplan.train.config import STAGES, TrainConfig
from zoomplan.train.folds import Indexed, stage_seed, train_lr_folds
from zoomplan.train.reward import alpha_at
from zoomplan.train.reward import reward as reward_fn
from zoomplan.train.rundir import DistInfo, append_metrics, start_card, trim_metrics
from zoomplan.train.stages import (
    POLICY_COMPONENT,
    STAGE_NEEDS,
    build_stage,
    expand_stages,
    load_component,
    require_components,
    stage_components,
)
from zoomplan.train.steps import PolicyModels, Tally, classifier_loss, cosine_lr, policy_predict, policy_step

__all__ = ["POLICY_COMPONENT", "STAGE_NEEDS", "Progress", "Trainer", "expand_stages", "stage_components", "train"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]


class Trainer:
    """Runs stages of one recipe into one run directory."""

    def __init__(
        self,
        cfg: TrainConfig,
        train_ds: Dataset,
        val_ds: Dataset,
        class_names: tuple[str, ...],
        out_dir: Path,
        device: torch.device,
        *,
        dataset: str = "",
        progress: Progress | None = None,
    ) -> None:
        self.cfg, self.train_ds, self.val_ds, self.device = cfg, train_ds, val_ds, device
        self.class_names = tuple(class_names)
        self.out = Path(out_dir)
        self.progress = progress or (lambda event, info: None)
        self.dist = DistInfo.from_env()
        self.ckpt_path = self.out / "model.pt"
        self.state_path = self.out / "last.pt"
        self.card, self.weights = start_card(cfg, self.class_names, train_ds, dataset, self.ckpt_path)
        self.streams = Streams.from_card(self.card, Radiometry.from_dict(cfg.model.lr_radiometry))

    # ---------------------------------------------------------------- files (rank 0 only)
    def _save_checkpoint(self) -> None:
        if self.dist.main:
            save_checkpoint(self.ckpt_path, self.card, self.weights, half=self.cfg.model.half_weights)

    def _log_metrics(self, row: dict[str, Any]) -> None:
        if self.dist.main:
            append_metrics(self.out / "metrics.jsonl", row)

    def _trim_metrics(self, stage: str, done: int) -> None:
        if self.dist.main:
            trim_metrics(self.out / "metrics.jsonl", stage, done)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # ---------------------------------------------------------------- evaluation on val
    def val_loader(self) -> DataLoader:
        return DataLoader(
            self.val_ds, batch_size=self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.data.workers
        )

    @torch.inference_mode()
    def validate(self, stage: str, trained: dict[str, nn.Module], pm: PolicyModels | None) -> dict[str, float]:
        """Val loss-free metrics of the stage being trained: accuracy, S, and (policy stages) reward."""
        if pm is not None:
            return self.validate_policy(pm, self.cfg.stage(stage).sigma, self.cfg.stage(stage).cost_power)
        tally = Tally()
        model = trained[stage]
        with eval_mode(model), autocast(self.device):
            for images, y in self.val_loader():
                y = y.to(self.device)
                hr, lr = self.streams(images.to(self.device))
                logits = model(hr if stage == "hr" else lr)
                s_full = float(self.card.num_patches * len(y)) if stage == "hr" else 0.0
                tally.add(0.0, float((logits.argmax(1) == y).sum()), s_full, 0.0, len(y))
        return tally.summary()

    @torch.inference_mode()
    def validate_policy(self, pm: PolicyModels, sigma: float, cost_power: float = 2.0) -> dict[str, float]:
        """Greedy (test-time) policy on val: accuracy, mean S and mean reward under ``sigma`` and ``cost_power``."""
        tally = Tally()
        mods = [pm.policy, pm.hr] + ([pm.lr] if pm.lr is not None else [])
        with eval_mode(*mods), autocast(self.device):
            for images, y in self.val_loader():
                y = y.to(self.device)
                hr, lr = self.streams(images.to(self.device))
                actions, probs = policy_predict(pm, hr, lr)
                correct = probs.argmax(1) == y
                tally.add(
                    0.0,
                    float(correct.sum()),
                    float(actions.sum()),
                    float(reward_fn(actions, correct, sigma, cost_power).sum()),
                    len(y),
                )
        return tally.summary()

    # ---------------------------------------------------------------- one stage
    def run_stage(self, stage: str, resume_state: dict[str, Any] | None, resume: bool = False) -> None:
        sc = self.cfg.stage(stage)
        torch.manual_seed(stage_seed(self.cfg.seed, stage, 10_000))  # initial weights depend on the seed alone
        trained, groups, pm = build_stage(self, stage)
        opt = torch.optim.Adam(groups, weight_decay=sc.weight_decay)
        scaler = grad_scaler(self.device)
        start, best = 0, -float("inf")
        if resume_state is not None or resume:
            self._trim_metrics(stage, int(resume_state["epoch"]) + 1 if resume_state is not None else 0)
        if resume_state is not None:
            for name, module in trained.items():
                module.load_state_dict(resume_state["models"][name])
            opt.load_state_dict(resume_state["optimizer"])
            start, best = int(resume_state["epoch"]) + 1, float(resume_state["best"])
            log.info("resuming stage %s at epoch %d", stage, start + 1)
        train_set: Dataset = self.train_ds
        if pm is not None and pm.lr is not None and sc.oof_folds > 1:
            pm.lr_folds, pm.fold_of = train_lr_folds(
                self.cfg, self.card, self.train_ds, self.streams, self.device, sc.oof_folds, self.progress
            )
            train_set = Indexed(self.train_ds)
        wrapped = {k: self._wrap(v) for k, v in trained.items()}
        if pm is not None:
            pm.policy = next(v for k, v in wrapped.items() if k.startswith("policy"))
            if pm.train_hr:
                pm.hr = next(v for k, v in wrapped.items() if k.startswith("hr"))
        if self.dist.world > 1:
            sampler: Any = DistributedSampler(
                train_set,
                num_replicas=self.dist.world,
                rank=self.dist.rank,
                shuffle=True,
                seed=stage_seed(self.cfg.seed, stage, 0),
            )
        steps_per_epoch = -(-len(self.train_ds) // (sc.batch_size * self.dist.world))  # type: ignore[arg-type]
        total_steps = steps_per_epoch * sc.epochs
        self.progress(
            "stage_start", {"stage": stage, "epochs": sc.epochs, "start_epoch": start, "steps": steps_per_epoch}
        )
        for epoch in range(start, sc.epochs):
            t0 = time.time()
            seed = stage_seed(self.cfg.seed, stage, epoch)
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            if self.dist.world > 1:
                sampler.set_epoch(epoch)
            else:
                sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed))
            loader = DataLoader(
                train_set, batch_size=sc.batch_size, sampler=sampler, num_workers=self.cfg.data.workers, drop_last=False
            )
            alpha = alpha_at(epoch, sc.epochs, sc.alpha_start, sc.alpha_end)
            for m in trained.values():
                m.train()
            if pm is not None and not pm.train_hr:
                pm.hr.eval()
            tally = Tally()
            for step, batch in enumerate(loader):
                images, y = batch[0], batch[1]
                index = batch[2] if len(batch) > 2 else None
                gstep = epoch * steps_per_epoch + step
                for g in opt.param_groups:
                    g["lr"] = cosine_lr(gstep, total_steps, g["base_lr"], sc.warmup_epochs * steps_per_epoch)
                y = y.to(self.device)
                hr, lr = self.streams(images.to(self.device), generator=gen, augment=True)
                with autocast(self.device):
                    if pm is None:
                        loss, correct = classifier_loss(
                            wrapped[stage], hr if stage == "hr" else lr, y, sc.label_smoothing
                        )
                        stats = {
                            "correct": float(correct),
                            "patches": float(self.card.num_patches * len(y)) if stage == "hr" else 0.0,
                            "reward": 0.0,
                        }
                    else:
                        loss, stats = policy_step(
                            pm,
                            hr,
                            lr,
                            y,
                            alpha=alpha,
                            sigma=sc.sigma,
                            generator=gen,
                            index=index,
                            cost_power=sc.cost_power,
                        )
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                tally.add(float(loss.detach()), stats["correct"], stats["patches"], stats["reward"], len(y))
                s = tally.summary()
                self.progress("step", {"stage": stage, "epoch": epoch, "step": step + 1, "steps": steps_per_epoch, **s})
            if self.dist.world > 1:
                t = tally.as_tensor()
                dist.all_reduce(t)
                tally = Tally.from_tensor(t)
            train_m = tally.summary()
            val_m = self.validate(stage, trained, pm)
            metric = val_m["acc"] if pm is None else val_m["reward"]
            improved = metric > best
            if improved:
                best = metric
                for name, module in trained.items():
                    self.weights[name] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
                metrics = dict(self.card.metrics)
                val = dict(metrics.get("val", {}))
                val[stage] = {**val_m, "epoch": epoch + 1, "config": dataclasses.asdict(sc)}
                metrics["val"] = val
                self.card = self.card.replace(metrics=metrics)
                self._save_checkpoint()
            row = {
                "stage": stage,
                "epoch": epoch + 1,
                "alpha": alpha,
                "time_s": round(time.time() - t0, 2),
                "best": improved,
                **{f"train_{k}": round(v, 5) for k, v in train_m.items()},
                **{f"val_{k}": round(v, 5) for k, v in val_m.items()},
            }
            self._log_metrics(row)
            if self.dist.main:
                save_state(
                    self.state_path,
                    {
                        "stage": stage,
                        "epoch": epoch,
                        "best": best,
                        "optimizer": opt.state_dict(),
                        "models": {k: v.state_dict() for k, v in trained.items()},
                    },
                )
            self.progress("epoch_end", row)
        if sc.epochs == 0:  # nothing trained: keep the initial weights so later stages can run
            for name, module in trained.items():
                self.weights.setdefault(name, {k: v.detach().cpu().clone() for k, v in module.state_dict().items()})
        self.card = self.card.replace(stages=tuple(s for s in STAGES if s in set(self.card.stages) | {stage}))
        self._save_checkpoint()
        self.progress("stage_end", {"stage": stage, "best": best})

    def check_prerequisites(self, stages: tuple[str, ...]) -> None:
        """Fail before any file is written if a stage needs weights that neither the run directory
        holds nor an earlier stage of this call will produce."""
        require_components(self, stages)

    def run(self, stages: tuple[str, ...], resume: bool = False) -> Path:
        """Run ``stages`` in order; with ``resume``, skip finished ones and continue the interrupted one."""
        self.check_prerequisites(stages)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.cfg.source and Path(self.cfg.source).is_file():
                shutil.copyfile(self.cfg.source, self.out / "recipe.toml")
        state = load_state(self.state_path) if resume and self.state_path.exists() else None
        for stage in stages:
            if stage == "baselines":
                if resume and (self.out / FILENAME).exists():
                    log.info("baselines already fine-tuned in %s; skipping", self.out / FILENAME)
                else:
                    finetune_baselines(self)
                continue
            if resume and stage in self.card.stages:
                log.info("stage %s already finished in %s; skipping", stage, self.ckpt_path)
                continue
            st = state if state is not None and state.get("stage") == stage else None
            self.run_stage(stage, st, resume)
            if self.dist.world > 1:
                dist.barrier()
        if any(s in POLICY_COMPONENT for s in stages):
            self.choose_deploy_stage(stages[-1] if stages[-1] in POLICY_COMPONENT else "ft2")
        return self.ckpt_path

    def choose_deploy_stage(self, reference: str) -> str:
        """Pick the policy stage the planner will use: the highest greedy val reward, every stage
        scored under the same sigma (that of ``reference``, the last policy stage trained), so the
        accuracy-for-patches trade-off is judged by one rule. Recorded in the card."""
        sigma = self.cfg.stage(reference).sigma if reference in self.cfg.stages else 0.5
        power = self.cfg.stage(reference).cost_power if reference in self.cfg.stages else 2.0
        scores = {}
        for stage, tag in POLICY_COMPONENT.items():
            if f"policy_{tag}" not in self.weights:
                continue
            pm = PolicyModels(
                load_component(self, f"policy_{tag}", required_by="deploy"),
                load_component(self, f"hr_{tag}" if tag != "pt" else "hr", required_by="deploy"),
                load_component(self, "lr", required_by="deploy") if tag == "ft2" else None,
                False,
                self.card.combine,
                self.card.patch_grid,
            )
            scores[tag] = self.validate_policy(pm, sigma, power)["reward"]
        best = max(scores, key=lambda t: scores[t])
        metrics = dict(self.card.metrics)
        metrics["deploy"] = {
            "sigma": sigma,
            "cost_power": power,
            "val_reward": {k: round(v, 5) for k, v in scores.items()},
            "chosen": best,
        }
        self.card = self.card.replace(deploy_stage=best, metrics=metrics)
        self._save_checkpoint()
        log.info("planner will use policy stage %s (val reward at sigma %g: %s)", best, sigma, scores)
        return best


def train(
    cfg: TrainConfig,
    train_ds: Dataset,
    val_ds: Dataset,
    class_names: tuple[str, ...],
    out_dir: str | Path,
    *,
    stage: str = "all",
    device: torch.device | None = None,
    resume: bool = False,
    dataset: str = "",
    progress: Progress | None = None,
) -> Path:
    """Train ``stage`` (or ``all``) of recipe ``cfg`` into ``out_dir``; returns the checkpoint path.

    Under ``torchrun`` (WORLD_SIZE > 1) the process group is created here (gloo on CPU, NCCL on CUDA).
    """
    info = DistInfo.from_env()
    device = device or torch.device("cpu")
    created = False
    if info.world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    try:
        trainer = Trainer(
            cfg,
            train_ds,
            val_ds,
            class_names,
            Path(out_dir),
            device,
            dataset=dataset,
            progress=progress if info.main else None,
        )
        return trainer.run(expand_stages(stage), resume=resume)
    finally:
        if created:
            dist.destroy_process_group()
