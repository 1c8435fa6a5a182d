"""Continuous learning inside ``engine run``: each model of the project whose file has a ``retrain:``
block is retrained every ``retrain.every`` of candle time, in a separate process.

The job is ``engine ml retrain`` itself (a child process: training never runs on the event loop and
never holds up a candle's orders), so promotion by ``retrain.margin`` (``promote: auto``) and the
``ml/retrain`` events are exactly the command's; running bots pick a promotion up from the registry
within a minute (engine/ml/live.py). The schedule follows the candles the engine is handed (the wall
clock live, the replayed time under ``--replay``, where the child trains on the replay's data up to the
current candle). One job per model at a time: retrains that fall due while one runs are folded into
one more, on the newest candles, started when it ends.
A job that fails or runs past the model file's ``retrain.timeout`` (default 30m) is stopped; the production model stays and an
``ml/retrain_failed`` event says why.

After each retrain the drift check runs the same way (``engine ml drift --to`` the same candle time,
so a replay never looks past its own time): the production model's training rows against the most
recent day per feature (PSI; major drift records an ``ml/drift`` event) and its stored live predictions
against the labels realised since (below ``retrain.min_live_accuracy``: ``ml/degraded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.store import EventCategory
from engine.store.events import record_event

__all__ = ["MLRetrainer", "RetrainPlan", "due_slot", "retrain_plans"]

log = logging.getLogger("engine.ml")
_NS = 1_000_000_000


@dataclass(frozen=True)
class RetrainPlan:
    name: str
    path: Path
    every_ns: int
    timeout_s: float = 1800.0  # retrain.timeout: longest a retrain or a drift check child may run


def retrain_plans(root: Path) -> list[RetrainPlan]:
    """The project's model files that ask for retraining (an explicit ``retrain:`` block)."""
    from dsl.timeframes import parse_duration
    from engine.config import load_model
    from engine.ml.namespace import discover_models

    plans = []
    for name, path in discover_models(root).items():
        try:
            loaded = load_model(path)
        except Exception as exc:  # reported by `engine validate`; nothing to schedule
            log.warning("model %s not scheduled for retraining: %s", name, exc)
            continue
        if "retrain" in loaded.model.model_fields_set:
            retrain = loaded.model.retrain
            every_ns = parse_duration(retrain.every) * _NS
            plans.append(RetrainPlan(name, path, every_ns, float(parse_duration(retrain.timeout))))
    return plans


def due_slot(close_ns: int, every_ns: int, last: int | None) -> int | None:
    """The schedule slot to retrain for at a candle closing at ``close_ns``, or None: a retrain is due
    each time the candle time enters a new multiple of ``every`` (never at the first candle seen)."""
    slot = close_ns // every_ns
    return slot if last is not None and slot > last else None


class MLRetrainer:
    def __init__(
        self,
        root: Path,
        factory: Any,
        data_dir: Path | None = None,
        plans: list[RetrainPlan] | None = None,
    ) -> None:
        self.root = root
        self.factory = factory
        self.data_dir = data_dir
        self.plans = retrain_plans(root) if plans is None else plans
        self._slot: dict[str, int] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, int] = {}  # model -> end of the retrain due while one ran
        self.started = 0
        self.candles_during_jobs = 0  # candles handed to the bots while a retrain ran
        self.drift_checks = 0  # drift checks that ran to the end (after a retrain)

    def observe_time(self, close_ns: int) -> None:
        """A candle closed: start the retrains that are due (cheap; never waits)."""
        if any(not job.done() for job in self._jobs.values()):
            self.candles_during_jobs += 1
        for plan in self.plans:
            slot = due_slot(close_ns, plan.every_ns, self._slot.get(plan.name))
            self._slot.setdefault(plan.name, close_ns // plan.every_ns)
            if slot is None:
                continue
            self._slot[plan.name] = slot
            running = self._jobs.get(plan.name)
            if running is not None and not running.done():
                log.info("model %s: retrain due, the previous one still runs: skipped", plan.name)
                continue
            self.started += 1
            self._jobs[plan.name] = asyncio.create_task(
                self._run(plan, close_ns), name=f"ml-retrain:{plan.name}"
            )

    async def stop(self, drain: bool) -> None:
        """``drain``: wait for the running retrains (a replay that ended); otherwise stop them."""
        jobs = [job for job in self._jobs.values() if not job.done()]
        if not drain:
            self._pending.clear()
            for job in jobs:
                job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    def _command(self, plan: RetrainPlan, close_ns: int, job: str = "retrain") -> list[str]:
        end = pd.Timestamp(close_ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")
        command = [sys.executable, "-c", "from engine.cli import main; main()", "ml", job]
        command += [str(plan.path), "--to", end] + (["--workers", "1"] if job == "retrain" else [])
        if self.data_dir is not None:
            command += ["--data", str(self.data_dir)]
        return command

    async def _child(
        self, command: list[str], env: dict[str, str], timeout_s: float
    ) -> tuple[int, list[str]]:
        """Run an ``engine ml`` child to its end: (exit code, output lines). A child past ``timeout_s``
        or an engine stopping kills it (TimeoutError / CancelledError raised after the kill)."""
        process = await asyncio.create_subprocess_exec(
            *command, cwd=self.root, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return int(process.returncode or 0), output.decode(errors="replace").strip().splitlines()

    async def _run(self, plan: RetrainPlan, close_ns: int) -> None:
        from engine.store.db import given_url

        bind = self.factory.kw.get("bind")
        env = {**os.environ, "ENGINE_ML_RETRAIN_CHILD": "1"}  # failures are recorded here, once
        if bind is not None:  # the engine's database, through the environment (never on a command line)
            env["ENGINE_DATABASE_URL"] = given_url(bind).render_as_string(hide_password=False)
        try:
            code, lines = await self._child(self._command(plan, close_ns), env, plan.timeout_s)
        except TimeoutError:
            await self._failed(plan, f"still training after {plan.timeout_s:g} s (retrain.timeout)")
            return
        except asyncio.CancelledError:
            await self._failed(plan, "engine stopping")
            raise
        if code != 0:
            await self._failed(plan, f"exit {code}: {lines[-1] if lines else ''}")
        else:
            log.info("%s", lines[-1] if lines else f"model {plan.name}: retrained")
            await self._check_drift(plan, close_ns, env)

    async def _check_drift(self, plan: RetrainPlan, close_ns: int, env: dict[str, str]) -> None:
        """``engine ml drift`` in a child, as of ``close_ns``; it records its own events. A check that
        cannot run (no production version yet), fails or runs too long is logged and changes nothing."""
        try:
            code, lines = await self._child(self._command(plan, close_ns, "drift"), env, plan.timeout_s)
        except TimeoutError:
            log.warning("model %s: drift check stopped after %g s", plan.name, plan.timeout_s)
            return
        if code == 0:
            self.drift_checks += 1
            log.info("model %s: drift checked: %s", plan.name, "; ".join(lines[-3:]))
        else:
            log.warning("model %s: drift check not done: %s", plan.name, lines[-1] if lines else code)

    async def _failed(self, plan: RetrainPlan, why: str) -> None:
        message = f"model {plan.name}: retraining in engine run failed ({why}); production model kept"
        log.warning("%s", message)
        with contextlib.suppress(Exception):  # a store that is down must not stop the engine
            async with self.factory() as session, session.begin():
                await record_event(
                    session, EventCategory.SYSTEM, "ml/retrain_failed", message, data={"model": plan.name}
                )
