"""One trading cycle: signals -> decide -> execute -> portfolio -> events, the same for every mode.

What differs between backtest, replay and live is only where signals and prices come from (a
SignalFeed) and which exchange fills the orders; this module is the one code path after that.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Callable, Protocol

from core.trading.engine import TradingEngine, books_problem, candle_shock_exit, manual_buy
from core.trading.events import EventKind, event, step_events
from core.trading.exchange import Exchange, ExchangeError, OrderOutcomeUnknown
from core.trading.portfolio import Portfolio
from core.i18n import _
from core.trading.reasons import Reason
from core.trading.types import (
    Decision,
    DecisionKind,
    MarketInput,
    OrderLimits,
    OrderRequest,
    OrderState,
    RiskSettings,
    Side,
    SourceDown,
    StepResult,
    WarmingUp,
)
from models.signal import Action, MLSignal

log = logging.getLogger(__name__)


class SignalFeed(Protocol):
    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str | WarmingUp]]:
        """Signal and price per market as of `now`, and why each market without one has none."""


class Recorder(Protocol):
    """Where step results go (core.storage.journal.Journal); raising means the step was not stored."""

    def record_step(self, result: StepResult, portfolio: Portfolio) -> list: ...

    def record_steps(self, results: list[StepResult], portfolio: Portfolio) -> list: ...

    def record_order(self, order: OrderRequest, at: datetime) -> None: ...

    def record_events(self, events: list) -> None: ...

    def record_day(self, portfolio: Portfolio, at: datetime) -> None: ...

    def record_cycle(self, at: datetime, portfolio: Portfolio, prices: dict[str, float]) -> None: ...


class Reconciler(Protocol):
    """Checks the books against the exchange (core.service.reconcile.Reconciler)."""

    def run(self, portfolio: Portfolio, prices: dict[str, float], now: datetime): ...

    def open_markets(self) -> set[str]: ...


def _not_stored(result: StepResult, exc: Exception) -> StepResult:
    return StepResult(market=result.market, at=result.at, signal=result.signal, decision=result.decision,
                      error=f"could not store the step, undone: {exc.__class__.__name__}")


class TradingCycle:
    """Runs every market's step for one candle close.

    With a recorder, each market step that sends an order is stored in a transaction of its own; if
    storing fails the step is undone in memory too (the paper wallet and the portfolio return to their
    state before it), an error event is raised, and the other markets go on. Steps that send no order
    change nothing but the record; they are stored together, in one transaction per cycle.
    """

    def __init__(self, feed: SignalFeed, exchange: Exchange, portfolio: Portfolio, *,
                 engine: TradingEngine | None = None, recorder: Recorder | None = None,
                 new_identifier: Callable[[], str] = lambda: uuid.uuid4().hex, limits: OrderLimits = OrderLimits(),
                 reconciler: Reconciler | None = None):
        self.feed = feed
        self.exchange = exchange
        self.portfolio = portfolio
        self.engine = engine or TradingEngine()
        self.recorder = recorder
        self.new_identifier = new_identifier
        self.limits = limits
        self.reconciler = reconciler  # core.reconcile.Reconciler: the books checked against the exchange
        self.prices: dict[str, float] = {}
        self._books_problem: str | None = None
        self._source_down = False

    def reconcile(self, now: datetime) -> tuple[frozenset[str], bool]:
        """Settle orders left open and adopt the exchange's balances; returns the markets still
        unsettled and whether the books were checked against the exchange."""
        if self.reconciler is None:
            return frozenset(), True  # a simulation's books are the exchange's
        checked = self.reconciler.run(self.portfolio, self.prices, now)
        return checked.unsettled, checked.books_checked

    def run(self, now: datetime, settings: RiskSettings = RiskSettings()) -> list[StepResult]:
        """Every market's step for the candle that closed at `now`, under `settings` (the agent's)."""
        inputs, errors = self.feed.inputs(now)
        self.prices.update({m: i.price_krw for m, i in inputs.items()})
        unsettled, reconciled = self.reconcile(now)
        self.portfolio.mark(self.prices)
        if reconciled and self.portfolio.roll_day(self.prices, now) and self.recorder is not None:
            try:  # the day's start comes from reconciled books only, and survives a restart
                self.recorder.record_day(self.portfolio, now)
            except Exception:
                log.exception("the start of trading day %s could not be stored", self.portfolio.day)
        account = self.portfolio.account(self.prices)  # the same for every market until a step trades
        self._check_books(now, account)
        results: list[StepResult] = []
        quiet: list[int] = []  # steps that sent no order: they only add to the record, stored together below

        def record_later(result: StepResult) -> None:
            quiet.append(len(results))
            results.append(result)

        for market, error in errors.items():
            if isinstance(error, WarmingUp):
                record_later(StepResult(market=market, at=now, warming_up=error))
            elif isinstance(error, SourceDown):
                record_later(StepResult(market=market, at=now, error=str(error), source_down=True))
            else:
                record_later(StepResult(market=market, at=now, error=error))
        for market, item in inputs.items():
            if market in unsettled:
                record_later(StepResult(market=market, at=now, signal=item.signal, error=str(Reason("unsettled"))))
                continue
            saved = self._snapshot() if self.recorder is not None else None
            result = self.step(market, item, settings, now, account)
            if result.order_id is None:
                record_later(result)
            else:  # a step that sent an order is committed now, in a transaction of its own
                results.append(self._stored(result, saved))
                account = self.portfolio.account(self.prices)
        self._check_source([e for e in errors.values() if isinstance(e, SourceDown)], list(errors), now)
        if self.recorder is not None:
            results = self._stored_together(results, quiet)
            try:
                self.recorder.record_cycle(now, self.portfolio, self.prices)
            except Exception:
                log.exception("equity snapshot at %s could not be stored", now)
        return results

    def _check_source(self, down: list, markets: list[str], now: datetime) -> None:
        """One alert when market data stops coming, one when it is back: not one per market and candle."""
        if bool(down) == self._source_down:
            return
        self._source_down = bool(down)
        name, params = ("market_data_down", {"error": down[0].error}) if down else ("market_data_back", {})
        if self.recorder is not None:
            try:
                self.recorder.record_events([event(EventKind.ERROR if down else EventKind.SYSTEM, name, now, **params)])
            except Exception:
                log.exception("could not store the %s alert", name)

    def _check_books(self, now: datetime, account) -> None:
        """Announce once when the books stop making sense (negative cash, no equity): the engine then
        refuses to buy on them until reconciliation puts them right."""
        problem = books_problem(account)
        if problem == self._books_problem:
            return
        self._books_problem = problem
        if problem is None:
            log.warning("the books are sane again")
            return
        log.error("the books are not sane: %s", problem)
        if self.recorder is not None:
            try:
                self.recorder.record_events([event(EventKind.ERROR, "books_not_sane", now, problem=problem)])
            except Exception:
                log.exception("could not store the alert either")

    def _stored_together(self, results: list[StepResult], quiet: list[int]) -> list[StepResult]:
        """Store the steps at `quiet` (they sent no order) in one transaction; nothing to undo if it fails."""
        if not quiet:
            return results
        try:
            self.recorder.record_steps([results[i] for i in quiet], self.portfolio)
            return results
        except Exception as exc:
            log.exception("%d steps at %s could not be stored", len(quiet), results[quiet[0]].at)
            results = list(results)
            for i in quiet:
                results[i] = _not_stored(results[i], exc)
            try:
                self.recorder.record_events([e for i in quiet for e in step_events(results[i])])
            except Exception:
                log.exception("could not store the error events either")
            return results

    def sell_now(self, market: str, now: datetime, reason: str) -> StepResult:
        """A sale users ordered by command: the whole position, through the same execute-and-store path."""
        position = self.portfolio.positions.get(market)
        if position is None:
            raise ValueError(_("no open position in {market}").format(market=market))
        if self.reconciler is not None and market in self.reconciler.open_markets():
            raise ValueError(f"{market}: {Reason('unsettled').localized()}")
        price = self.prices.get(market)
        if price is None:
            raise ValueError(_("no price for {market} yet: the first cycle after a start has not judged it").format(
                market=market))
        decision = Decision(market=market, approved=True, action=Action.SELL, investment_ratio=1.0, reason=reason,
                            kind=DecisionKind.MANUAL)
        return self._guarded(lambda: self.execute(market, None, decision, price, now))

    def buy_now(self, market: str, amount_krw: float | None, now: datetime, settings: RiskSettings,
                by: str) -> StepResult:
        """A buy users ordered by command, through the engine's guards (manual_buy) and the same
        execute-and-store path; a refusal raises ValueError with the guard's reason."""
        if self.reconciler is not None and market in self.reconciler.open_markets():
            raise ValueError(f"{market}: {Reason('unsettled').localized()}")
        price = self.prices.get(market)
        if price is None:
            raise ValueError(_("no price for {market} yet: the first cycle after a start has not judged it").format(
                market=market))
        decision = manual_buy(market, amount_krw, self.portfolio.positions.get(market),
                              self.portfolio.account(self.prices), settings, self.exchange.rules, now, by)
        if not decision.approved:
            why = decision.reason.localized() if isinstance(decision.reason, Reason) else str(decision.reason)
            raise ValueError(_("{market} not bought: {reason}").format(market=market, reason=why))
        return self._guarded(lambda: self.execute(market, None, decision, price, now))

    def shock_sell(self, market: str, price_krw: float, now: datetime, reason: str) -> StepResult:
        """The price-shock guard's sale between candle closes: the emergency path, at the price seen."""
        decision = Decision(market=market, approved=True, action=Action.SELL, investment_ratio=1.0, reason=reason,
                            kind=DecisionKind.EMERGENCY)
        self.prices[market] = price_krw
        return self._guarded(lambda: self.execute(market, None, decision, price_krw, now))

    def _guarded(self, step: Callable[[], StepResult]) -> StepResult:
        saved = self._snapshot() if self.recorder is not None else None
        return self._stored(step(), saved)

    def _snapshot(self):
        return self.portfolio.snapshot(), self.exchange.snapshot()

    def _stored(self, result: StepResult, saved) -> StepResult:
        if self.recorder is None:
            return result
        try:
            self.recorder.record_step(result, self.portfolio)
            return result
        except Exception as exc:
            log.exception("%s: step at %s could not be stored; undone", result.market, result.at)
            if saved is not None:
                self.portfolio.restore(saved[0])
                if saved[1] is not None:
                    self.exchange.restore(saved[1])
            failed = _not_stored(result, exc)
            try:
                self.recorder.record_events(step_events(failed))
            except Exception:
                log.exception("could not store the error event either")
            return failed

    def step(self, market: str, item: MarketInput, settings: RiskSettings, now: datetime, account=None) -> StepResult:
        account = account or self.portfolio.account(self.prices)
        position = self.portfolio.positions.get(market)
        shock = candle_shock_exit(position, item.open_krw, item.low_krw, settings)
        if shock is not None:  # the guard would have sold inside the candle, at the shock price
            decision, price = shock
            return self.execute(market, item.signal, decision, price, now)
        decision = self.engine.decide(item.signal, position, account, settings, item.price_krw, now,
                                      rules=self.exchange.rules, volatility=item.volatility)
        if decision.renew:
            self.portfolio.renew(market, now)
        if not decision.approved:
            return StepResult(market=market, at=now, signal=item.signal, decision=decision)
        return self.execute(market, item.signal, decision, item.price_krw, now)

    def execute(self, market: str, signal: MLSignal | None, decision: Decision, price_krw: float,
                now: datetime) -> StepResult:
        identifier = self.new_identifier()
        candle_at = signal.timestamp if signal is not None else None
        if decision.action == "BUY":
            # whole KRW, rounded down; the epsilon keeps 0.3 * 1,000,000 from becoming 299,999
            amount = int(decision.investment_ratio * self.portfolio.equity(self.prices) + 1e-6)
            allowed, why = self.limits.allowed(amount, self.portfolio.bought_on(now))
            if why is not None:
                amount = int(allowed)
                if amount < self.exchange.rules.min_order_krw:
                    return StepResult(market=market, at=now, signal=signal, decision=decision, error=f"buy refused: {why}")
                log.info("%s buy %s", market, why)
            order = OrderRequest(identifier=identifier, market=market, side=Side.BID, ord_type="price", amount_krw=amount,
                                 volume=None, kind=decision.kind, candle_at=candle_at)
        else:
            volume = self.portfolio.positions[market].volume * decision.investment_ratio
            order = OrderRequest(identifier=identifier, market=market, side=Side.ASK, ord_type="market", amount_krw=None,
                                 volume=volume, kind=decision.kind, candle_at=candle_at)
        if self.recorder is not None:
            try:
                self.recorder.record_order(order, now)
            except Exception as exc:  # never send an order the database does not know about
                log.exception("%s: order not sent, it could not be stored first", market)
                return StepResult(market=market, at=now, signal=signal, decision=decision, error=
                                  f"order not sent: it could not be stored first ({exc.__class__.__name__})")
        try:
            if order.side == "bid":
                fill = self.exchange.buy_market(market, amount, identifier, price_krw, now)
            else:
                fill = self.exchange.sell_market(market, order.volume, identifier, price_krw, now)
        except ExchangeError as exc:
            log.warning("%s %s failed: %s", market, decision.action, exc)
            state = OrderState.UNKNOWN if isinstance(exc, OrderOutcomeUnknown) else OrderState.FAILED
            return StepResult(market=market, at=now, signal=signal, decision=decision, error=str(exc), order_id=identifier,
                              order_state=state)
        trade = self.portfolio.apply(fill, decision.kind)
        return StepResult(market=market, at=now, signal=signal, decision=decision, fill=fill, order_id=identifier,
                          trade=trade)
