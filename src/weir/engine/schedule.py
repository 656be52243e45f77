"""Schedule triggers (`every:<duration>`, `cron:<expr>`): calls at each fire time.

A schedule sleeps until its next fire time; runs of one trigger never overlap (unless
it is `run_async`). If a run overruns, later fire times are run back to back (none is
skipped).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from weir.engine.triggers import TriggerRunner


class ScheduleTriggerRunner(TriggerRunner):
    """`every:` / `cron:`: calls at each fire time, computed from now when started."""

    what = "schedule"
    context = "schedule plugin"

    async def _run(self) -> None:
        next_t = self.spec.next_fire_after(time.time())
        while not self._stopping:
            if next_t is None:
                self.log("WARN", "the schedule has no more fire times; the trigger is idle")
                return
            while (delay := next_t - time.time()) > 0:
                if await self._sleep(delay):
                    return
            fire = next_t
            header = {"kind": "schedule", "call_time": int(fire)}
            start = ("starting execution with scheduled time "
                     f"{datetime.fromtimestamp(int(fire), UTC):%Y-%m-%d %H:%M:%S} UTC")
            if self.defn.run_async:
                await self._spawn(self.run_with_policy(header, b"", start))
            else:
                await self.run_with_policy(header, b"", start)
            next_t = self.spec.next_fire_after(fire)
