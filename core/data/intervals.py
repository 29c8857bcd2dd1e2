"""Candle units and their length in seconds (Upbit's minute units, hours, a day): the one table the
settings, the schedule and the candle files share. Imports nothing, so `--help` stays quick."""

INTERVAL_SECONDS = {
    **{str(m): m * 60 for m in (1, 3, 5, 10, 15, 30, 60, 240)},
    "1h": 3600,
    "4h": 4 * 3600,
    "1d": 86400,
}
