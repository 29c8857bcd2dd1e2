"""`autotrader health`: is the agent alive? Docker's HEALTHCHECK runs it beside the agent.

Reads the last stored trading cycle from DATABASE_URL (core.service.liveness) and prints one line:
exit 0 when healthy, 1 when not (Docker's meaning; 2 stays bad usage). The database's password is
never shown.
"""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from core.service.registry import UsageError
from core.service.settings import Settings


def add_parser(sub) -> None:
    p = sub.add_parser("health", help="exit 0 if the agent stored a trading cycle recently enough (Docker's "
                                      "HEALTHCHECK), 1 with the reason if not")
    p.add_argument("--max-age", type=float, metavar="SECONDS",
                   help="the oldest last cycle still healthy (default: two cycle periods plus five minutes)")
    p.set_defaults(func=cmd_health)


def cmd_health(args, settings: Settings) -> int:
    from core.service.liveness import check

    if args.max_age is not None and args.max_age <= 0:
        raise UsageError(f"--max-age: expected a positive number of seconds, got {args.max_age}")
    max_age = timedelta(seconds=args.max_age) if args.max_age is not None else None
    verdict = check(settings, datetime.now(timezone.utc), max_age)
    if verdict.healthy:
        print(f"healthy: {verdict.reason}")
        return 0
    print(f"autotrader health: unhealthy: {verdict.reason}", file=sys.stderr)
    return 1
