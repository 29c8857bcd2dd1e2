"""The console's scheduler: each of the runtime's jobs on its own asyncio timer (Telegram uses its
JobQueue instead). A run is its own task, so stopping cancels the timers but lets a run finish."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from core.runtime.runtime import Job, Runtime


def next_run(job: Job, after: datetime) -> datetime:
    """The first time at or after `after` that `job` is due."""
    if job.daily_at is not None:
        at = datetime.combine(after.date(), job.daily_at.replace(tzinfo=None), tzinfo=timezone.utc)
        return at if at >= after else at + timedelta(days=1)
    first = job.first_at or after
    if first >= after:
        return first
    periods = int((after - first).total_seconds() // job.every_seconds) + 1
    return first + timedelta(seconds=periods * job.every_seconds)


def schedule_jobs(runtime: Runtime, jobs: list[Job], active: set[asyncio.Task]) -> list[asyncio.Task]:
    async def timer(job: Job) -> None:
        due = next_run(job, datetime.now(timezone.utc))
        while True:
            await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
            run = asyncio.create_task(runtime.run_job(job))
            active.add(run)
            run.add_done_callback(active.discard)
            due = next_run(job, max(datetime.now(timezone.utc), due + timedelta(microseconds=1)))

    return [asyncio.create_task(timer(job), name=f"timer {job.name}") for job in jobs]
