"""An event handler that takes messages in batches: one worker, one transaction, many messages.

Messages are gathered until `max_batch` have arrived or `window` seconds passed since the first,
then handed to one worker as a list; each message is acknowledged only when that worker returned,
i.e. after the batch's effect (or each failed message's dead letter) is committed. How many can be
gathered is bounded by the container's prefetch (its `max_workers`).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import eventlet
from nameko.containers import ContainerBeingKilled
from nameko.events import EventHandler


class BatchEventHandler(EventHandler):
    def __init__(self, *args: Any, max_batch: int = 100, window: float = 0.005, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_batch, self.window = max_batch, window
        self._pending: list[tuple[Any, Any]] = []
        self._timer: Any = None

    def handle_message(self, body: Any, message: Any) -> None:
        self._pending.append((body, message))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.window, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        messages = [m for _, m in batch]
        try:
            self.container.spawn_worker(self, ([b for b, _ in batch],), {},
                                        context_data=self.unpack_message_headers(messages[0]),
                                        handle_result=partial(self._batch_done, messages))
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)

    def _batch_done(self, messages: list[Any], worker_ctx: Any, result: Any = None, exc_info: Any = None) -> Any:
        for message in messages:
            self.handle_message_processed(message, result, exc_info)
        return result, exc_info

    def stop(self) -> None:
        self._flush()
        super().stop()


batch_event_handler = BatchEventHandler.decorator
