"""The trainer process: `python -m core.service.trainer JOB.json RESULT.json`.

Started by core.service.retraining at a lower priority, never inside the bot's process: it brings the
data directory up to date (the resumable download, against UPBIT_API_URL), trains a challenger and
judges it beside the serving model (core.research.challenger), and writes its report as JSON,
atomically. A failure writes {"error": one line} instead; the exit status says which (0 done,
2 a reason to report, 1 a bug, with its traceback on stderr, which goes to the job's log file).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("autotrader.trainer")


def upkeep(job: dict, spec) -> dict:
    """Missing candles appended to the data directory (each file validated by the loader); the gaps
    each market has, reported (windows never span a gap, so nothing is learnt across one)."""
    from core.data.candles import find_gaps, load_candle_csv
    from core.upbit.download import download_market
    from core.upbit.quotation import UpbitQuotationClient

    report: dict = {}
    client = UpbitQuotationClient(job["api_url"])
    since = datetime.fromisoformat(job["since"])
    for market in spec.markets:
        result = download_market(client, market, spec.interval, spec.interval_seconds, since, Path(spec.data_dir),
                                 now=datetime.fromisoformat(spec.until))
        gaps = find_gaps(load_candle_csv(result.path), spec.interval_seconds)
        report[market] = {"new_candles": result.new_candles, "candles": result.total_candles,
                          "last": result.last.isoformat() if result.last is not None else None,
                          "gaps": len(gaps), "missing_candles": int(sum(g.missing for g in gaps))}
    return report


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        os.nice(10)  # the bot's cycle and chat come first
    except OSError:
        pass
    status, out = 0, {}
    try:
        from core.research.challenger import ChallengerSpec, run

        job = json.loads(job_path.read_text())
        spec = ChallengerSpec.from_json(json.dumps(job["challenger"]))
        data = upkeep(job["upkeep"], spec) if job.get("upkeep") else {}
        out = run(spec)
        out["data"] = data
    except Exception as exc:
        from core.redaction import redact

        expected = isinstance(exc, (ValueError, OSError)) or exc.__class__.__name__ in ("UpbitError", "CandleDataError")
        if not expected:
            traceback.print_exc()
        status, out = (2 if expected else 1), {"error": redact(f"{exc.__class__.__name__}: {exc}")[:500]}
    out["finished_at"] = datetime.now(timezone.utc).isoformat()
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str))
    os.replace(tmp, result_path)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
