"""Cron schedules: tasks run on a 5-field cron expression (UTC) by a served instance.

``parse_cron`` reads an expression; ``ScheduleStore`` keeps schedules in the data
directory's database; ``Scheduler(client)`` submits their due runs (``aesop serve`` runs one).
"""

from ._cron import Cron, CronError, parse_cron
from ._scheduler import Scheduler
from ._store import Schedule, ScheduleStore

__all__ = ["Cron", "CronError", "Schedule", "ScheduleStore", "Scheduler", "parse_cron"]
