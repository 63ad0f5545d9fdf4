"""The buyer's logistics timeline: the order's own changes and its couriers' reports, merged into one
story that reads in the order things happened, each event once, the end last.

Two clocks write it. The order's changes are in the order the hub applied them (their times never go
back: `orders.transition` keeps them so). A courier's reports carry the courier's clock, which can be
behind ours (a "booked" before the order existed) or ahead (a "delivered" after "completed"). So:

- changes keep their applied order; a report goes between them by its time, and at the same time by how
  far along the way it is (`STAGE`: a "booked" before the "rider_assigned" it led to);
- a report is never earlier than the change that booked its courier, nor later than the order's end
  (completed, cancelled, refunded, returned): it is shown at that change's time instead;
- a report that repeats what a change already says (the courier's `rider_assigned` beside the order's
  `rider_assigned`, its `delivered` beside the order's) is left out, and so is a report repeated for the
  same booking (the same status reported twice);
- references the buyer has no use for (the courier's booking or waybill number) are taken out of the text.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

# The order's end: nothing is shown after it but another end (a refund after completion).
ENDS = frozenset({"completed", "cancelled", "refunded", "returned"})
# Changes that book a courier: its reports cannot come before.
BOOKINGS = frozenset({"dispatched", "shipped"})
# How far along the way each status is: what goes first when two clocks give the same time.
STAGE = {status: i for i, group in enumerate([
    ("pending_payment",), ("paid",), ("allocated",), ("picking",), ("picked",),
    ("ready_for_pickup", "dispatched", "shipped"),
    ("booked", "problem", "expired", "cancel_requested"), ("rider_assigned",), ("rider_at_store",),
    ("collected", "picked_up"), ("in_transit",), ("out_for_delivery",), ("delivered", "returning"),
    ("returned",), ("completed", "cancelled"), ("refunded",)]) for status in group}


@dataclass(frozen=True)
class Step:
    at: datetime
    status: str
    source: str
    detail: str
    seq: int                       # changes: the order applied; reports: the order recorded
    booking: int | None = None     # a report: the shipment (booking) it is about; None for a change


def merge(changes: Iterable[Step], reports: Iterable[Step], hide: Iterable[str] = ()) -> list[Step]:
    """The timeline from the order's changes and its couriers' reports; `hide` are references to take out."""
    story = _changes_in_order(changes)
    said = {c.status for c in story}
    first_booked = next((c.at for c in story if c.status in BOOKINGS), story[0].at if story else None)
    ended = next((c.at for c in story if c.status in ENDS), None)
    shown: list[Step] = []
    seen: set[tuple[int | None, str]] = set()
    for r in sorted(reports, key=lambda r: (r.at, _stage(r), r.seq)):
        if r.status in said or (r.booking, r.status) in seen:
            continue
        seen.add((r.booking, r.status))
        at = max(r.at, first_booked) if first_booked is not None else r.at
        at = min(at, ended) if ended is not None else at
        shown.append(replace(r, at=at))
    shown.sort(key=lambda r: (r.at, _stage(r), r.seq))
    out: list[Step] = []
    i = 0
    for change in story:
        # reports before this change: earlier ones; at the same time, those further behind on the way,
        # and all of them when this change is the end
        while i < len(shown) and (shown[i].at < change.at or shown[i].at == change.at and (
                change.status in ENDS or _stage(shown[i]) < _stage(change))):
            out.append(shown[i])
            i += 1
        out.append(change)
    out.extend(shown[i:])
    refs = sorted({h for h in hide if h}, key=len, reverse=True)
    return [replace(s, detail=without_refs(s.detail, refs)) if refs else s for s in out]


def _stage(step: Step) -> int:
    return STAGE.get(step.status, STAGE["booked"])


def _changes_in_order(changes: Iterable[Step]) -> list[Step]:
    """Applied order; a time behind the previous change's is shown at that time (never backwards)."""
    out: list[Step] = []
    for c in sorted(changes, key=lambda c: c.seq):
        if out and c.at < out[-1].at:
            c = replace(c, at=out[-1].at)
        out.append(c)
    return out


def without_refs(text: str, refs: list[str]) -> str:
    """The text with each reference gone: "(REF, fee 500 fen)" -> "", "waybill REF from X" -> "from X"."""
    if not text:
        return text
    for ref in refs:
        if ref not in text:
            continue
        r = re.escape(ref)
        text = re.sub(rf"\s*\([^()]*{r}[^()]*\)", "", text)                 # a parenthesis naming it
        text = re.sub(rf"(?i)\b(?:waybill|booking|shipment|tracking|ref(?:erence)?)\s*(?:no\.?|number)?\s*[:#]?\s*{r}",
                      "", text)
        text = text.replace(ref, "")
    return re.sub(r"\s{2,}", " ", text).strip(" ;,")
