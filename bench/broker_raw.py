"""The broker's own publish -> consume rate, measured the way the relay publishes (batches with
confirms on RabbitMQ), so the hub's figures can be read as a fraction of it."""
from __future__ import annotations

import time
import uuid

from kombu import Connection, Exchange, Queue


def raw_rate(broker_url: str, messages: int = 5000, batch: int = 500) -> float:
    """Messages per second from first publish to last consumed."""
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(name, type="direct", durable=False, auto_delete=True)
    queue = Queue(name, exchange=exchange, routing_key=name, durable=False, auto_delete=True)
    body = {"id": "x" * 36, "type": "stock.changed", "data": {"sku": "TEA-001", "location_id": "S001"}}
    with Connection(broker_url, transport_options={"polling_interval": 0.001}) as conn:
        channel = conn.channel()
        queue(channel).declare()
        confirms = conn.transport.driver_type == "amqp"
        acked = [0]
        if confirms:
            channel.confirm_select()
            channel.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, max(acked[0], tag)))
        producer = conn.Producer(channel, exchange=exchange, serializer="json")
        received = [0]

        def on_message(body: object, message: object) -> None:
            received[0] += 1
            message.ack()

        consumer = conn.Consumer(queue, callbacks=[on_message], channel=conn.channel())
        consumer.qos(prefetch_count=500)
        consumer.consume()
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            for _ in range(min(batch, messages - sent)):
                producer.publish(body, routing_key=name, delivery_mode=1)
                sent += 1
            while confirms and acked[0] < sent:
                conn.drain_events(timeout=10)
        while received[0] < messages:
            try:
                conn.drain_events(timeout=10)
            except TimeoutError:
                break
        elapsed = time.perf_counter() - started
        consumer.cancel()
    return received[0] / elapsed
