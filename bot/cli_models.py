"""`autotrader models list|show <version>|promote <version>|rollback`: the model registry of
DATABASE_URL, from the command line. A running bot serves a version promoted here within
MODEL_WATCH_SECONDS (10 s), at a cycle boundary."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone

from core.service.registry import UsageError
from core.service.settings import Settings


def _engine(settings: Settings):
    from core.storage.database import open_database

    return open_database(settings.database_url)


def _score(recent: dict, who: str) -> str:
    f = (recent or {}).get(who) or {}
    return "-" if f.get("score") is None else f"{f['score']:.2f}"


def cmd_models(args, settings: Settings) -> int:
    from core.i18n import language
    from core.service import model_versions

    engine = _engine(settings)
    try:
        with language("en"):  # operator tools speak English (docs/translating.md)
            return _models(args, settings, engine)
    except model_versions.VersionError as exc:
        raise UsageError(str(exc)) from None
    finally:
        engine.dispose()


def _models(args, settings: Settings, engine) -> int:
    from core.service import model_versions
    from core.storage import model_registry as registry

    if args.action == "list":
        rows = registry.versions(engine)
        if not rows:
            print("The registry is empty: the bot registers its model as version 1 when it first starts.")
            return 0
        print(f"{'version':>7s}  {'status':10s}  {'created (UTC)':16s}  {'model':24s}  {'data':23s}  "
              f"{'score':>6s}  {'vs':>6s}  reason")
        for v in rows:
            span = f"{v.data_first:%Y-%m-%d}..{v.data_last:%Y-%m-%d}" if v.data_first and v.data_last else "-"
            print(f"{v.version:7d}  {v.status:10s}  {v.created_at:%Y-%m-%d %H:%M}  {v.model_id[:24]:24s}  "
                  f"{span:23s}  {_score(v.recent, 'challenger'):>6s}  {_score(v.recent, 'serving'):>6s}  {v.reason}")
        return 0
    if args.action == "show":
        version = registry.get(engine, _number(args.version))
        if version is None:
            raise UsageError(f"there is no model version {args.version}; `autotrader models list` lists them")
        print(json.dumps(asdict(version), indent=2, default=str))
        return 0
    now = datetime.now(timezone.utc)
    if args.action == "promote":
        number = _number(args.version)
    else:
        if args.version:
            raise UsageError("rollback takes no version: it returns to the version that served before")
        number = model_versions.rollback_target(engine).version
    serving = registry.serving(engine)
    target = registry.get(engine, number)
    markets = (target.markets if target and target.markets else None) or settings.markets
    version = model_versions.promote(engine, number, markets, now, "cli", "cli", None, args.action,
                                     f"autotrader models {args.action}")
    print(f"version {version.version} ({version.model_id}) is serving (was "
          f"{serving.version if serving else 'none'}); a running bot switches at its next cycle boundary")
    return 0


def _number(text: str | None) -> int:
    if not text or not text.lower().removeprefix("v").isdigit() or len(text) > 10:
        raise UsageError(f"expected a version number such as 3, got {text!r}")
    return int(text.lower().removeprefix("v"))


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="the model registry: list, show, promote or roll back versions")
    p.add_argument("action", choices=("list", "show", "promote", "rollback"))
    p.add_argument("version", nargs="?", help="show/promote: the version number")
    p.set_defaults(func=cmd_models)
