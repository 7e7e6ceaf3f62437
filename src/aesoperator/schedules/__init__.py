"""Cron schedules: tasks run on a 5-field cron expression (UTC) by a served instance.

``parse_cron`` reads an expression; ``open_schedules(client.store_url)`` opens the schedules
kept with a client's store (``ScheduleStore``: a data directory's SQLite database;
``PostgresScheduleStore``: the PostgreSQL store's database); ``Scheduler(client)`` submits
their due runs (``aesop serve`` runs one).
"""

from ._cron import Cron, CronError, parse_cron
from ._postgres import PostgresScheduleStore
from ._scheduler import Scheduler
from ._store import BaseScheduleStore, Schedule, ScheduleStore, open_schedules

__all__ = [
    "BaseScheduleStore",
    "Cron",
    "CronError",
    "PostgresScheduleStore",
    "Schedule",
    "ScheduleStore",
    "Scheduler",
    "open_schedules",
    "parse_cron",
]
