"""How does a walk-forward read? Its fold table, the overall and per-period figures beside the three
baselines, the targets met and missed, and a picture of the four equity curves with per-fold bars."""
from __future__ import annotations

import io

from bot.summary import figure


def _f(m: dict, key: str) -> str:
    return figure(key, m.get(key)) if m else "-"


ROW_KEYS = ("total_return", "sharpe", "max_drawdown", "trades", "profit_factor", "expectancy", "exposure", "turnover")
HEAD = "| {} | return | Sharpe | max drawdown | trades | profit factor | mean trade | exposure | turnover |"


def _row(name: str, m: dict) -> str:
    return f"| {name} | " + " | ".join(_f(m, k) for k in ROW_KEYS) + " |"


def walkforward_text(report: dict) -> str:
    c = report["config"]
    lines = [f"Walk-forward on {c['data']} ({', '.join(c['markets'])}), trained on {c['train_data']}: "
             f"{len(report['folds'])} test periods of {c['test_months']} months from {c['start'][:10]}, "
             f"{c['window']} window, validation {c['validation_months']} months, LSTM refitted every "
             f"{c['lstm_every']} folds; {report.get('seconds', 0):.0f} s"
             + (f" on {report['ran_on']}" if report.get("ran_on") else ""), ""]
    fallback = [f["test"][0][:10] for f in report["folds"] if f.get("validation_traded_on", c["data"]) != c["data"]]
    if fallback:
        lines += [f"Validation slices without traded candles were simulated on {c['train_data']} (folds from "
                  f"{', '.join(fallback)}); AUC is measured on the learnt candles' test rows.", ""]
    lines += ["| fold | chosen on validation | AUC buy/sell | return | Sharpe | trades | PF | exposure | "
              "B&H return | trend return |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in report["folds"]:
        auc = f["auc"]
        aucs = "-" if auc.get("buy") is None else f"{auc['buy']:.3f}/{auc['sell']:.3f}"
        chosen = ", ".join(f"{k}={v}" for k, v in f["chosen"].items() if k != "label") or "base"
        s = f["strategy"]
        lines.append(f"| {f['test'][0][:10]} | {chosen} | {aucs} | {_f(s, 'total_return')} | {_f(s, 'sharpe')} | "
                     f"{s['trades']} | {_f(s, 'profit_factor')} | {_f(s, 'exposure')} | "
                     f"{_f(f['buy_and_hold'], 'total_return')} | {_f(f['trend'], 'total_return')} |")
    lines += ["", HEAD.format("overall"), "|---" * 9 + "|", _row("strategy", report["overall"])]
    lines += [_row(name.replace("_", " "), report["baselines"][name]) for name in ("buy_and_hold", "trend", "cash")]
    for period, figures in report["periods"].items():
        if figures.get("strategy"):
            lines += ["", HEAD.format(period), "|---" * 9 + "|"]
            lines += [_row(name.replace("_", " "), m) for name, m in figures.items() if m]
    auc = report["overall"]["auc"]
    if auc.get("buy") is not None:
        lines += ["", f"Mean one-vs-rest AUC over {auc['folds']} folds: buy {auc['buy']:.3f}, sell {auc['sell']:.3f}"]
    lines += ["", "Targets:"] + [f"  {_verdict(t['met'])}: {name} ({_value(t['value'])}; goal "
                                 f"{_value(t['goal'])})" for name, t in report["targets"].items()]
    d = report["defaults"]
    label = f"label={d['label']['horizon']}:{d['label']['threshold']}"
    lines += ["", f"Defaults for the next period (chosen on {d['chosen_on']}): "
                  + ", ".join([label] + [f"{k}={v}" for k, v in d["settings"].items() if k != "label"])]
    if d.get("search"):
        s = d["search"]
        lines += [f"Search: {s['trials']} trials in study {s.get('study', '?')}"
                  + (f", {s['resumed']} of them from an earlier run" if s.get("resumed") else "")
                  + f"; best score {s['score']:.3f}"]
    return "\n".join(lines)


def _verdict(met) -> str:
    return "not measured" if met is None else "met" if met else "MISSED"


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {x:.3f}" if isinstance(x, float) else f"{k} {x}" for k, x in v.items())
    return str(v)


def walkforward_png(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from bot.charts import KRW_AXIS, date_axis

    curves = report["curves"]
    times = pd.to_datetime(curves["times"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), gridspec_kw={"height_ratios": [3, 2]})
    for key, label, colour in (("strategy", "strategy (out of sample)", "tab:blue"),
                               ("buy_and_hold", "buy and hold", "tab:gray"), ("trend", "trend rule (EMA 200)", "tab:green")):
        top.plot(times, curves[key], label=label, color=colour)
    top.axhline(curves["strategy"][0], color="black", linewidth=0.8, linestyle=":", label="cash")
    top.set_yscale("log")
    top.yaxis.set_major_formatter(KRW_AXIS)
    top.set_ylabel("equity (KRW, log scale)")
    top.set_title("Walk-forward: every period traded by a model that never saw it")
    top.legend(loc="upper left", fontsize=8)
    date_axis(top)
    folds = report["folds"]
    x = np.arange(len(folds))
    width = 0.4
    bottom.bar(x - width / 2, [100 * f["strategy"]["total_return"] for f in folds], width, color="tab:blue",
               label="strategy")
    bottom.bar(x + width / 2, [100 * (f["buy_and_hold"]["total_return"] or 0) for f in folds], width, color="tab:gray",
               label="buy and hold")
    bottom.set_xticks(x[::max(1, len(x) // 12)])
    bottom.set_xticklabels([folds[i]["test"][0][:7] for i in x[::max(1, len(x) // 12)]], fontsize=8)
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel("return per test period (%)")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
