"""Flow 1's last hop: tell each sales channel what it may sell per (SKU, location).

Bursts coalesce by construction: the consumer publishes the figure as it is *now* and skips
when the channel was already told that figure — so ten quick sales at a till produce few
pushes, and the last one carries the right number.

No transaction is open while the shop is called. Each push is numbered before it is sent, and while it
is in flight what the channel was told reads "unknown", so a batch taking a newer sale's event meanwhile
pushes rather than skips; a push overlapped by another — either may have landed last — records "unknown"
and is pushed again (`publish_figures`' docstring says why the shop then ends with the hub's figure).
Batches of one process take turns per pair (`_publish_all`), so they overlap only across processes.
"""
from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import TypeGuard

from sqlalchemy import bindparam, select, tuple_

from hub.bootstrap import HubContext
from hub.domain.stock import available, channel_figure
from hub.events import StockChanged
from hub.ports import ChannelStockPublisher, StoreStockBatches
from hub.services import inventory, sold_out
from hub.storage import raw
from hub.storage.in_list import ByDialect, in_list, in_rows, rows_bound
from hub.storage.tables import ChannelStockPublished, StockLevel, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore, insert_ignore_many

log = logging.getLogger(__name__)


def figure_now(uow: UnitOfWork, ctx: HubContext, safety: int, sku: str, store_id: str,
               channel: str | None = None) -> int:
    ch = ctx.config.channel(channel) if channel else None
    if ch is not None and ch.allocation is not None:
        return inventory.figure_for(uow.session, ctx.config, ch, sku, store_id)
    return inventory.stock_at(uow.session, ctx.config, sku, store_id).available_to(safety)


def told_row(uow: UnitOfWork, channel: str, sku: str, store_id: str) -> ChannelStockPublished:
    """What `channel` was last told for (sku, store), locked for this transaction."""
    key = {"channel": channel, "sku": sku, "location_id": store_id}
    insert_ignore(uow.session, ChannelStockPublished, {**key, "available": -1, "published_at": utcnow()})
    return uow.session.execute(select(ChannelStockPublished).filter_by(**key).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one()


def publish_figure(ctx: HubContext, shop: ChannelStockPublisher, channel: str, safety: int, sku: str, store_id: str, *,
                   shown: int | None = None) -> int | None:
    """Bring the channel's figure for (sku, store) to the hub's. Returns the figure pushed, None if none
    was needed. `shown` is what the channel shows, when known (else what it was last told).

    The batch's way with one pair (`publish_figures`): the push is numbered, so an older push landing last
    is never recorded as told over a newer one (issue 19), and a figure that moved meanwhile gets a recheck
    event instead of rounds of pushes here."""
    pair = (sku, store_id)
    pushed = publish_figures(ctx, shop, channel, safety, [pair], shown=None if shown is None else {pair: shown})
    return pushed.get(pair)


Pair = tuple[str, str]          # (sku, store_id)


# Core statements built once per dialect, run on the unit of work's connection (no ORM session), on PostgreSQL
# straight on the cursor (`storage/raw.py`) with the pairs bound as arrays (`in_rows`): built per batch through
# the ORM's select they were a third of channel sync's CPU, and each session a batch opened another fifth.
_LEVELS = StockLevel.__table__
_HELD = ByDialect(lambda d: select(_LEVELS.c.sku, _LEVELS.c.location_id, _LEVELS.c.on_hand, _LEVELS.c.reserved)
                  .where(in_rows((_LEVELS.c.sku, _LEVELS.c.location_id), "pairs", d)))


def held_now(uow: UnitOfWork, pairs: list[Pair]) -> dict[Pair, tuple[int, int]]:
    """(on_hand, reserved) of each (sku, store) that has a stock row, in one statement."""
    conn = uow.connection
    return {(sku, loc): (on_hand, reserved) for sku, loc, on_hand, reserved in raw.execute(
        conn, _HELD.on(conn), rows_bound(conn, "pairs", pairs, 2))}


def figures_now(uow: UnitOfWork | None, ctx: HubContext, safety: int, pairs: list[Pair],
                channel: str | None = None, held: dict[Pair, tuple[int, int]] | None = None) -> dict[Pair, int]:
    """What the channel may sell of each (sku, store), read in one statement (0 where nothing is held); a
    `channel` with an allocation is shown no more than what is left of its share (a second statement).
    `held`: the stock rows as the caller read them already (then a channel without an allocation reads
    nothing here)."""
    ch = ctx.config.channel(channel) if channel else None
    allocated = ch is not None and ch.allocation is not None
    if uow is None and (held is None or allocated):
        with ctx.reader() as reader:
            return figures_now(reader, ctx, safety, pairs, channel, held)
    if held is None:
        assert uow is not None
        held = held_now(uow, pairs)
    its_own = inventory.channel_held(uow.session, ch.id, pairs) if uow is not None and ch is not None and allocated \
        else {}
    out = {}
    for sku, loc in pairs:
        on_hand, reserved = held.get((sku, loc), (0, 0))
        share = ch.allocation_for(loc, sku) if ch is not None else None
        out[(sku, loc)] = channel_figure(on_hand, reserved, ctx.config.safety_stock(loc), safety, share,
                                         its_own.get((sku, loc), 0))
    return out


UNKNOWN = -1                 # told: a push is in flight, or which of overlapping ones landed last is not known
_TOLD = ChannelStockPublished.__table__
_TOLD_KEY = (_TOLD.c.sku, _TOLD.c.location_id)
_TRIPLE = (_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id)
_TOLD_ALL = ByDialect(lambda d: select(_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id, _TOLD.c.available)
                      .where(in_list(_TOLD.c.channel, "channels", d), in_rows(_TOLD_KEY, "pairs", d)))
# The rows locked in key order, channel first (two batches over the same rows wait for each other instead of
# deadlocking; a batch of one channel locks in the same order).
_LOCKED = ByDialect(lambda d: select(_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id, _TOLD.c.push_seq,
                                     _TOLD.c.untrusted_through)
                    .where(in_rows(_TRIPLE, "triples", d))
                    .order_by(_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id).with_for_update())
# Numbering in one statement: the rows locked in key order by the sub-select (its rows are locked as it emits
# them, sorted, however the update consumes them), each given the next push_seq and told UNKNOWN.
_BEGIN = ByDialect(lambda d: _TOLD.update()
                   .where(tuple_(*_TRIPLE).in_(
                       select(*_TRIPLE).where(in_rows(_TRIPLE, "triples", d))
                       .order_by(_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id).with_for_update()))
                   .values(push_seq=_TOLD.c.push_seq + 1, available=UNKNOWN)
                   .returning(_TOLD.c.channel, _TOLD.c.sku, _TOLD.c.location_id, _TOLD.c.push_seq))
_KEY = (_TOLD.c.channel == bindparam("p_channel"), _TOLD.c.sku == bindparam("p_sku"),
        _TOLD.c.location_id == bindparam("p_loc"))
_RECORD = (_TOLD.update().where(*_KEY)
           .values(available=bindparam("p_available"), published_at=bindparam("p_at"),
                   untrusted_through=bindparam("p_untrusted")))

Triple = tuple[str, str, str]       # (channel, sku, store_id)


def _told(uow: UnitOfWork, channel: str, pairs: list[Pair]) -> dict[Pair, int]:
    """What `channel` was last told per pair."""
    return _told_each(uow, [channel], pairs)[channel]


def _told_each(uow: UnitOfWork, channels: list[str], pairs: list[Pair]) -> dict[str, dict[Pair, int]]:
    """What each of `channels` was last told per pair, in one statement."""
    out: dict[str, dict[Pair, int]] = {c: {} for c in channels}
    conn = uow.connection
    for channel, sku, loc, figure in raw.execute(conn, _TOLD_ALL.on(conn),
                                                 {"channels": channels, **rows_bound(conn, "pairs", pairs, 2)}):
        out[channel][(sku, loc)] = figure
    return out


def _ensure_rows(uow: UnitOfWork, triples: list[Triple], exist: set[Triple]) -> None:
    """The told rows of `triples` created if missing. `exist`: rows known to be there (rows are never deleted) —
    only the others are inserted, so the usual batch inserts nothing (inserting every pair each time, ignored, was
    an eighth of channel sync's CPU)."""
    now = utcnow()
    missing = [t for t in triples if t not in exist]
    if missing:
        insert_ignore_many(uow.connection, ChannelStockPublished, [
            {"channel": channel, "sku": sku, "location_id": loc, "available": -1, "published_at": now}
            for channel, sku, loc in missing])


def _begin_pushes(uow: UnitOfWork, triples: list[Triple], exist: set[Triple]) -> dict[Triple, int]:
    """Each push numbered (the next `push_seq`) and told UNKNOWN until it is recorded."""
    _ensure_rows(uow, triples, exist)
    conn = uow.connection
    return {(channel, sku, loc): seq for channel, sku, loc, seq in raw.execute(
        conn, _BEGIN.on(conn), rows_bound(conn, "triples", triples, 3))}


def _numbers(uow: UnitOfWork, triples: list[Triple]) -> dict[Triple, tuple[int, int]]:
    """(push_seq, untrusted_through) per row, locked in key order; the lock's read is the read."""
    conn = uow.connection
    return {(channel, sku, loc): (seq, untrusted) for channel, sku, loc, seq, untrusted in
            raw.execute(conn, _LOCKED.on(conn), rows_bound(conn, "triples", triples, 3))}


@dataclass
class ChannelPush:
    """One channel's part of a publish: where its figures go, and what it was told or is seen to show."""
    shop: ChannelStockPublisher
    channel: str
    safety: int
    told: dict[Pair, int] | None = None         # as the caller just read it (None: read here)
    shown: dict[Pair, int] | None = None        # what the channel was seen to show (reconciliation)


def publish_figures(ctx: HubContext, shop: ChannelStockPublisher, channel: str, safety: int, pairs: list[Pair], *,
                    shown: dict[Pair, int] | None = None, held: dict[Pair, tuple[int, int]] | None = None,
                    told: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Bring the channel's figure for each (sku, store) to the hub's (`publish_channels` says how). Returns the
    figure pushed per pair. `shown`: what the channel was seen to show for some pairs (reconciliation), compared
    instead of told; `held` and `told`: the stock rows and what this channel was told, as the caller just read
    them."""
    pushed = publish_channels(ctx, [ChannelPush(shop, channel, safety, told, shown)], pairs, held=held)
    return pushed.get(channel, {})


def publish_channels(ctx: HubContext, pushes: list[ChannelPush], pairs: list[Pair], *,
                     held: dict[Pair, tuple[int, int]] | None = None) -> dict[str, dict[Pair, int]]:
    """Bring each channel's figure for each (sku, store) to the hub's, every channel at once in four statements
    rather than some eight round trips per pair and channel: read every figure and what each channel was told;
    number the pushes of those that differ (what they were told now reads UNKNOWN); read their figures again and
    push them (several at once, every channel's, no transaction open); record them under the lock. A pair whose
    push overlapped another gets a stock event of its own (cause `recheck`), so a later batch pushes the figure
    again — together with the sales' own events for it — rather than this batch pushing round after round
    (issue 11). Returns the figure pushed per channel and pair.

    Why the shop ends with the hub's figure. Pushes land at the shop in any order and it keeps the last one
    to land, so `told` may claim a figure only when no other push could have landed after it. Each push
    takes the next `push_seq` of its pair and sets told to UNKNOWN before it is sent; at its record, under
    the row's lock:

    - a later push has begun since (`push_seq` moved on): either may land last. Told is UNKNOWN,
      pushes up to the latest begun are marked untrusted, and a recheck is emitted. The recheck's push
      begins after this one has landed, so it lands after it (issue 19: A's slow 5 landing after B's 4).
    - an earlier push recorded, while this one was in flight, that it overlapped (this push's number is
      `untrusted_through` or below): told is UNKNOWN; that push's recheck reads UNKNOWN (or a later
      push's numbers) and pushes again, after both landed.
    - otherwise no other push overlapped this one: every push begun before it recorded before it began, so
      landed before; any begun after records after, under these same rules. The shop shows this figure,
      and told is it.

    A figure that moved under the push needs no recheck: the sale that moved it committed its own stock
    event, and whichever batch takes that event reads the figure after the sale and told after it: UNKNOWN
    while this push is in flight (so it pushes), this figure once recorded (so it pushes if they differ). For
    that the figure pushed is read after the numbering committed — a batch that skipped the pair just
    before, seeing its old told equal to the figure after its sale, is then covered by this push's figure.
    A told figure is skipped only when it is what the shop shows, or a push in flight will emit a recheck
    at its record. A push that fails may have landed: it is recorded as overlapped (UNKNOWN) before the
    error is raised, so the retry pushes. `held`: the stock rows as the caller just read them (one read
    transaction for every channel of a batch)."""
    pairs = sorted(set(pairs))
    if not pairs or not pushes:
        return {}
    unread = [p.channel for p in pushes if p.told is None]
    if held is None or unread:
        with ctx.reader() as uow:
            held = held_now(uow, pairs) if held is None else held
            read = _told_each(uow, unread, pairs) if unread else {}
    else:
        read = {}
    keys: dict[str, list[Pair]] = {}
    exist: set[Triple] = set()
    for p in pushes:
        told = p.told if p.told is not None else read[p.channel]
        exist.update((p.channel, sku, loc) for sku, loc in told)          # `told` reads only rows that exist
        told = told | (p.shown or {})
        figures = figures_now(None, ctx, p.safety, pairs, p.channel, held)
        if differ := [pair for pair in pairs if told.get(pair) != figures[pair]]:
            keys[p.channel] = differ
    if not keys:
        return {}
    triples = sorted((channel, sku, loc) for channel, differ in keys.items() for sku, loc in differ)
    with ctx.uow() as uow:                                    # number the pushes: short, before any call
        mine = _begin_pushes(uow, triples, exist)
        uow.commit()
    due = _due(ctx, [p for p in pushes if p.channel in keys], keys)    # read after the numbering (docstring)
    failed = _push_all([(p.shop, p.channel, due[p.channel]) for p in pushes if p.channel in keys])
    with ctx.uow() as uow:
        numbers, now = _numbers(uow, triples), utcnow()
        rows, recheck = [], []
        for triple in triples:
            channel, pair = triple[0], triple[1:]
            latest, untrusted = numbers[triple]
            if latest != mine[triple] or triple in failed:     # overlapped by a later push, or landed unknown
                available, untrusted = UNKNOWN, latest
                recheck.append(triple)
            elif mine[triple] <= untrusted:                    # an earlier push overlapped this one
                available = UNKNOWN
            else:                                              # alone: the shop shows this figure
                available = due[channel][pair]
            rows.append({"p_channel": channel, "p_sku": pair[0], "p_loc": pair[1], "p_available": available,
                         "p_at": now, "p_untrusted": untrusted})
        uow.connection.execute(_RECORD, rows)           # many rows: SQLAlchemy's batched executemany
        for pair in dict.fromkeys(t[1:] for t in recheck if t not in failed):    # a failed batch is retried whole
            inventory.stock_changed(uow, pair[0], pair[1], RECHECK)
        uow.commit()
    if failed:
        raise next(iter(failed.values()))
    return due


def _due(ctx: HubContext, pushes: list[ChannelPush], keys: dict[str, list[Pair]]) -> dict[str, dict[Pair, int]]:
    """Each channel's figures for its pairs to push, the stock rows read once for all of them."""
    with ctx.reader() as uow:
        held = held_now(uow, sorted({pair for differ in keys.values() for pair in differ}))
        return {p.channel: figures_now(uow, ctx, p.safety, keys[p.channel], p.channel, held) for p in pushes}


RECHECK = "recheck"          # the cause of a stock event channel sync emits for a pair whose pushes overlapped
PUSHES_AT_ONCE = 8           # shop calls in flight for one batch (WeChat's stock API takes one SKU per call)
_pushers: ThreadPoolExecutor | None = None


def _push_all(jobs: list[tuple[ChannelStockPublisher, str, dict[Pair, int]]]) -> dict[Triple, BaseException]:
    """Push every channel's figures, several calls at once (green threads in the services); the (channel, sku,
    store) whose push failed, with the error, once all have finished (a figure pushed twice is harmless: it is
    absolute). A channel whose API takes many SKUs of a store per call (`StoreStockBatches`) gets one call per
    store and `stocks_per_call` figures — a call that fails fails each pair it carried."""
    global _pushers
    calls = [([(channel, sku, loc) for sku, loc in pairs], call) for shop, channel, due in jobs
             for pairs, call in _calls(shop, due)]
    if len(calls) == 1:
        ((triples, call),) = calls
        try:
            call()
        except Exception as exc:  # noqa: BLE001 — recorded as unknown, then raised by the caller
            return dict.fromkeys(triples, exc)
        return {}
    if _pushers is None:
        _pushers = ThreadPoolExecutor(PUSHES_AT_ONCE, thread_name_prefix="shop-push")
    # Each push in a copy of this context: its log fields and trace go with it into the pool's thread.
    running = [(triples, _pushers.submit(contextvars.copy_context().run, call)) for triples, call in calls]
    wait([future for _, future in running])
    return {triple: failed for triples, future in running if (failed := future.exception()) is not None
            for triple in triples}


_BATCHES_BY_KIND: dict[type, bool] = {}


def _takes_store_batches(shop: ChannelStockPublisher) -> TypeGuard[StoreStockBatches]:
    """Whether the connector implements `StoreStockBatches`, decided once per connector class: a runtime
    Protocol check walks the Protocol's members each time (2-3 % of channel sync's CPU, once per batch)."""
    kind = type(getattr(shop, "unwrapped", shop))          # through the metrics wrapper (`hub.metered`)
    known = _BATCHES_BY_KIND.get(kind)
    if known is None:
        known = _BATCHES_BY_KIND[kind] = isinstance(shop, StoreStockBatches)
    return known


def _calls(shop: ChannelStockPublisher, due: dict[Pair, int]) -> list[tuple[list[Pair], Callable[[], None]]]:
    """The shop calls that push `due`, each with the pairs it carries."""
    if not _takes_store_batches(shop) or shop.stocks_per_call < 2:
        return [([pair], partial(shop.update_store_stock, pair[0], pair[1], figure)) for pair, figure in due.items()]
    by_store: dict[str, list[tuple[str, int]]] = {}
    for (sku, store), figure in due.items():
        by_store.setdefault(store, []).append((sku, figure))
    step = shop.stocks_per_call
    return [([(sku, store) for sku, _ in figures[i:i + step]], partial(shop.update_store_stocks, store,
                                                                        figures[i:i + step]))
            for store, figures in by_store.items() for i in range(0, len(figures), step)]


def stock_to_shop(ctx: HubContext, event: StockChanged) -> None:
    _publish(ctx, event.sku, event.location_id)


def stock_to_shop_batch(ctx: HubContext, events: list[StockChanged]) -> None:
    """Many stock events, one push per (SKU, store) whose figure the channel does not show yet."""
    pairs = sorted({(e.sku, e.location_id) for e in events if _is_store(ctx, e.location_id)})
    if not pairs:
        return
    _publish_all(ctx, pairs)


def _publish_all(ctx: HubContext, pairs: list[Pair]) -> None:
    """Every publishing channel brought to the hub's figures for `pairs`. A pair another batch of this
    process is publishing is left until that batch is done, then published here: batches run side by side
    (`workers/subscribe.py`), and two pushes of one pair in flight at once would overlap and cost a recheck
    event each time a busy store's pair is in two batches (waiting holds no pair, so no two batches wait for
    each other)."""
    turns = _turns(ctx)
    while pairs:
        mine, pairs = turns.take(pairs)
        try:
            if mine:
                _publish_pairs(ctx, mine)
        finally:
            turns.give_back(mine)
        if pairs:
            turns.wait_for(pairs)


def _publish_pairs(ctx: HubContext, pairs: list[Pair]) -> None:
    """`_publish_all`'s work on pairs no other batch here holds: the stock rows and what each channel was
    told read in one transaction, the store figures handed to the sold-out cache (low ones kept, the rest
    forgotten: how a restock, a cancel or an expiry un-sticks it), then every channel's pushes together."""
    channels = [c for c in ctx.config.channels if c.publish_to]
    with ctx.reader() as uow:
        held = held_now(uow, pairs)
        told = _told_each(uow, [c.id for c in channels], pairs) if channels else {}
    sold_out.note_figures(ctx.sold_out, ctx.config, {
        (sku, loc): available(*held.get((sku, loc), (0, 0)), ctx.config.safety_stock(loc)) for sku, loc in pairs})
    publish_channels(ctx, [ChannelPush(ctx.connectors.channel(c.publish_to), c.id, c.safety_stock, told[c.id])
                           for c in channels if c.publish_to is not None], pairs, held=held)


class PairTurns:
    """Which (SKU, store) pairs a batch of this process is publishing now."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._taken: set[Pair] = set()

    def take(self, pairs: list[Pair]) -> tuple[list[Pair], list[Pair]]:
        """(the pairs now this caller's, the pairs another caller holds)."""
        with self._changed:
            mine = [p for p in pairs if p not in self._taken]
            self._taken.update(mine)
        taken_here = set(mine)
        return mine, [p for p in pairs if p not in taken_here]

    def give_back(self, pairs: list[Pair]) -> None:
        with self._changed:
            self._taken.difference_update(pairs)
            self._changed.notify_all()

    def wait_for(self, pairs: list[Pair]) -> None:
        """Until one of `pairs` is free (another waiter may take it first: take again)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._taken.issuperset(pairs))


def _turns(ctx: HubContext) -> PairTurns:
    return ctx.local("channel_stock.turns", PairTurns)


def _is_store(ctx: HubContext, location_id: str) -> bool:
    location = ctx.config.location(location_id)
    return location is not None and location.kind == "store"    # the shop shows per-store stock


def _publish(ctx: HubContext, sku: str, location_id: str) -> None:
    if not _is_store(ctx, location_id):
        return                              # warehouses ship express
    _publish_all(ctx, [(sku, location_id)])
