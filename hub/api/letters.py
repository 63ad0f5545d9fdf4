"""Dead letters and queues as the operator's pages reach them (ops.py's replay, the console's): shared by
both handler modules, so it lives in neither."""
from __future__ import annotations

import hmac

from sqlalchemy import select

from hub.api.http import ApiError, Call, log
from hub.api.pipeline import csrf_token
from hub.storage.tables import DeadLetter


def queue_depths(call: Call) -> dict[str, int]:
    """The broker's queues as the gateway sees them; empty when it cannot tell (no broker wired, or down)."""
    if call.deps.queue_depths is None:
        return {}
    try:
        return call.deps.queue_depths()
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not fail the scrape
        log.warning("queue depths unavailable: %s", exc)
        return {}


def may_replay(call: Call, token: str) -> None:
    """403 unless a browser holding basic credentials also sent the console's token (which another site's
    page cannot know)."""
    if call.caller.via_basic and not hmac.compare_digest(token.encode(), csrf_token(call.ctx.config).encode()):
        raise ApiError(403, "forbidden", "replay from the console: its token is missing or wrong")


def letter_kind(call: Call, dead_letter_id: int) -> str:
    with call.ctx.reader() as uow:
        return uow.session.execute(select(DeadLetter.kind).where(DeadLetter.id == dead_letter_id)).scalar_one()


def unknown_outcome(dead_letter_id: int) -> ApiError:
    """A letter whose work may already be done elsewhere is resent only when the operator says so."""
    return ApiError(409, "unknown_outcome", f"dead letter {dead_letter_id} has an unknown outcome: the other "
                                            "system may already hold it; check there, then replay with resend")


def parked_letter_id(call: Call) -> int:
    """The path's dead letter id if it names a parked one; 404 otherwise — before anything else is asked."""
    raw = call.params["dead_letter_id"]
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise ApiError(404, "not_found", f"no dead letter {raw!r}")
    with call.ctx.uow() as uow:
        row = uow.session.get(DeadLetter, int(raw))
        if row is None or row.status != "parked":
            raise ApiError(404, "not_found", f"no parked dead letter {raw}")
    return int(raw)


def replay_letter(call: Call, dead_letter_id: int, *, resend: bool = False) -> bool:
    """Run a dead letter through its consumer again: the gateway's hook, or this process's own consumers.
    A consumer that fails again (or is not known here) keeps the letter: False, never a 5xx.
    `resend`: the operator checked a letter of unknown outcome and says send it again."""
    try:
        if call.deps.replay_dead_letter is not None:
            hook = call.deps.replay_dead_letter
            return bool(hook(dead_letter_id, resend=True) if resend else hook(dead_letter_id))
        from hub import consumers, handlers
        return consumers.replay(call.ctx, dead_letter_id, handlers.BY_NAME, resend=resend)
    except Exception as exc:  # noqa: BLE001 - the letter stays parked; the answer says it failed
        log.warning("replay of dead letter %s failed: %s", dead_letter_id, exc)
        return False
