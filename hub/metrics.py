"""Every metric the hub exports, defined in this one module (prometheus_client).

Processes record into `METRICS` (or a `HubMetrics` on a registry of their own, in tests). With
PROMETHEUS_MULTIPROC_DIR set — the process launcher sets it, one empty directory shared by every
replica — each process writes its values to files there and `/metrics` aggregates them, so counters
from all replicas add up and survive a replica's restart. Figures that describe the database
(outbox backlog, dead letters parked now) and the broker's queues are read at scrape time.

Names (each counter also as `…_total`):
  hub_http_requests, hub_http_request_duration_seconds                      route template, method (status)
  hub_consumer_duration_seconds, hub_consumer_messages, hub_consumer_failures   consumer (outcome)
  hub_connector_call_duration_seconds, hub_connector_errors                 system, operation (kind)
  hub_connector_last_success_timestamp_seconds, …_last_failure_…            system
  hub_dead_letters_parked_events, hub_dead_letters_replayed                 consumer / outcome
  hub_reconciliation_drift, hub_reconciliation_repaired                     channel
  hub_channel_order_pulls, hub_channel_orders_missed                         channel (outcome)
  hub_payment_reconciliation_runs, …_differences, …_repaired                 system (outcome | kind)
  hub_flash_sale_admissions                                                  outcome (admitted, sold_out, …)
  hub_sold_out_cache_refusals                                                channel (pickup orders the cache refused)
  hub_orders_placed, hub_stock_events_applied
  hub_courier_claims                                                         system, outcome
  hub_express_tracking_stopped                                               system (the courier stopped pushing)
  hub_cancel_requests                                                        outcome (accepted, refused)
  hub_courier_bookings_capped                                                system
  hub_delivery_escalations                                                   courier, step (ESCALATION_STEPS)
  hub_courier_cancel_penalty_fen                                             courier (fen the courier kept)
  scrape time (SCRAPE_GAUGES): hub_outbox_unsent, hub_outbox_oldest_unsent_age_seconds, hub_dead_letters_parked,
    hub_queue_messages{queue}, hub_refunds{status}, hub_refunds_oldest_open_age_seconds{status}
  process_* and python_* (the serving process; per process in multiprocess mode is not aggregated)
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

disable_created_metrics()          # `_created` series double the output and no dashboard reads them

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: an HTTP answer, a consumer's work and an outbound call all sit between 1 ms and 30 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# the gate's verdicts (hub.domain.flash_sale.Verdict), and units handed back
FLASH_SALE_OUTCOMES = ("admitted", "again", "sold_out", "over_limit", "too_fast", "not_started", "ended", "unknown",
                       "released")

# the steps of a delivery's escalation (hub/flows/escalation.py), as hub_delivery_escalations counts them
ESCALATION_STEPS = ("tip", "tip_refused", "switch", "express", "operator", "cancel_refused", "operator_rebook")

# Figures read from the database or the broker when /metrics is scraped (hub/api/ops.py): name -> help.
SCRAPE_GAUGES = {
    "hub_outbox_unsent": "Outbox events not yet confirmed by the broker",
    "hub_outbox_oldest_unsent_age_seconds": "Age of the oldest outbox event not yet confirmed by the broker (0: none)",
    "hub_dead_letters_parked": "Failed work parked for an operator now",
    "hub_queue_messages": "Messages waiting in each broker queue",
    "hub_refunds": "Refunds by status now (requested, processing, success, abnormal, closed, failed)",
    "hub_refunds_oldest_open_age_seconds": "Age of the oldest refund still waiting on the platform, by status "
                                           "(requested, processing; 0: none)",
}


class HubMetrics:
    """The hub's metric objects on one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.registry = registry
        r = registry
        self.requests = Counter("hub_http_requests", "HTTP requests by route template, method and status",
                                ("route", "method", "status"), registry=r)
        self.request_seconds = Histogram("hub_http_request_duration_seconds", "HTTP answer time by route template",
                                         ("route", "method"), buckets=LATENCY_BUCKETS, registry=r)
        self.orders_placed = Counter("hub_orders_placed", "Orders placed by fulfilment type", ("fulfillment",),
                                     registry=r)
        self.stock_events = Counter("hub_stock_events_applied", "Stock deltas and counts applied to the ledger",
                                    ("source", "kind"), registry=r)
        self.consumer_seconds = Histogram("hub_consumer_duration_seconds",
                                          "Time a consumer spent on one event, retries included", ("consumer",),
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.consumer_messages = Counter("hub_consumer_messages", "Events handled by consumer and outcome "
                                         "(applied, duplicate, parked)", ("consumer", "outcome"), registry=r)
        self.consumer_failures = Counter("hub_consumer_failures", "Failed attempts of a consumer (each retry counts)",
                                         ("consumer",), registry=r)
        self.connector_seconds = Histogram("hub_connector_call_duration_seconds",
                                           "Outbound call time by external system and operation",
                                           ("system", "operation"), buckets=LATENCY_BUCKETS, registry=r)
        self.connector_errors = Counter("hub_connector_errors", "Failed outbound calls by system, operation and "
                                        "error kind", ("system", "operation", "kind"), registry=r)
        self.connector_last_success = Gauge("hub_connector_last_success_timestamp_seconds",
                                            "Unix time of the last successful call to the system", ("system",),
                                            multiprocess_mode="max", registry=r)
        self.connector_last_failure = Gauge("hub_connector_last_failure_timestamp_seconds",
                                            "Unix time of the last failed call to the system", ("system",),
                                            multiprocess_mode="max", registry=r)
        self.dead_letters_parked = Counter("hub_dead_letters_parked_events", "Events parked as dead letters",
                                           ("consumer",), registry=r)
        self.dead_letters_replayed = Counter("hub_dead_letters_replayed", "Dead-letter replays by outcome "
                                             "(ok, failed)", ("outcome",), registry=r)
        self.reconciliation_drift = Counter("hub_reconciliation_drift", "Channel stock figures found different "
                                            "from what the hub would publish", ("channel",), registry=r)
        self.reconciliation_repaired = Counter("hub_reconciliation_repaired", "Drifted channel stock figures "
                                               "repaired with an absolute update", ("channel",), registry=r)
        self.channel_order_pulls = Counter("hub_channel_order_pulls", "Pulls of a channel's changed orders, by "
                                           "outcome (ok, failed)", ("channel", "outcome"), registry=r)
        self.channel_orders_missed = Counter("hub_channel_orders_missed", "Channel orders (or their changes) the "
                                             "pull found that the channel's pushes never delivered", ("channel",),
                                             registry=r)
        self.payment_reconciliation_runs = Counter(
            "hub_payment_reconciliation_runs", "Comparisons of a payment system's daily bills with the hub, by "
            "outcome (ok; error: no usable bill, e.g. its SHA1 did not match)", ("system", "outcome"), registry=r)
        self.payment_reconciliation_differences = Counter(
            "hub_payment_reconciliation_differences", "Lines where a payment system's daily bill and the hub "
            "disagree, per run, by kind (hub.domain.payment_bills.Kind)", ("system", "kind"), registry=r)
        self.payment_reconciliation_repaired = Counter(
            "hub_payment_reconciliation_repaired", "Payments the hub missed, applied from the daily bill",
            ("system",), registry=r)
        self.express_tracking_stopped = Counter("hub_express_tracking_stopped", "Express waybills whose tracking "
                                                "push the courier stopped (Kuaidi100 abort): polled from then on",
                                                ("system",), registry=r)
        self.courier_claims = Counter("hub_courier_claims", "Courier callbacks by what the courier's query said of "
                                      "them (confirmed, contradicted, unconfirmed, mismatch, stale_booking)",
                                      ("system", "outcome"), registry=r)
        self.cancel_requests = Counter("hub_cancel_requests", "Buyers' cancels of booked deliveries by the "
                                       "courier's answer (accepted, refused: the order went on)", ("outcome",),
                                       registry=r)
        self.bookings_capped = Counter("hub_courier_bookings_capped", "Orders left for an operator after "
                                       "hub.max_courier_bookings bookings", ("system",), registry=r)
        self.delivery_escalations = Counter("hub_delivery_escalations", "Escalation steps taken for bookings no "
                                            "rider accepted, by courier and step: " + ", ".join(ESCALATION_STEPS),
                                            ("courier", "step"), registry=r)
        self.cancel_penalty_fen = Counter("hub_courier_cancel_penalty_fen", "Cancel penalties (fen) couriers kept "
                                          "for bookings the hub cancelled", ("courier",), registry=r)
        self.flash_sale_admissions = Counter("hub_flash_sale_admissions", "Flash-sale gate answers by outcome: "
                                             + ", ".join(FLASH_SALE_OUTCOMES), ("outcome",), registry=r)
        self.sold_out_cache_refusals = Counter("hub_sold_out_cache_refusals", "Pickup orders the sold-out cache "
                                               "refused without the ledger, by channel", ("channel",), registry=r)

    # -- exposition ------------------------------------------------------------------------------
    def collecting_registry(self) -> CollectorRegistry:
        """What a scrape reads: every process's files in multiprocess mode, else this registry."""
        if not os.environ.get(MULTIPROC_ENV) or self.registry is not REGISTRY:
            return self.registry
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        ProcessCollector(registry=merged)       # the serving process's own CPU, memory and file descriptors
        return merged

    def samples(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        """(labels, value) of every sample called `name` (e.g. hub_connector_errors_total), all processes."""
        for family in self.collecting_registry().collect():
            for sample in family.samples:
                if sample.name == name:
                    yield sample.labels, sample.value

    def render(self, gauges: Iterable[Metric] = ()) -> bytes:
        """The exposition text: recorded metrics, then the figures read just now (`gauges`)."""
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Fixed(list(gauges)))
        return generate_latest(self.collecting_registry()) + generate_latest(scrape)


    def exported_series(self) -> set[str]:
        """Every series name a scrape can carry from the hub's own metrics (counters as `…_total`,
        histograms as `…_bucket`, `…_sum`, `…_count`) and the scrape-time gauges — what dashboards and
        alert rules may name."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
        names = set(SCRAPE_GAUGES)
        for family in self.registry.collect():
            if family.name.startswith("hub_"):
                names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        return names


class _Fixed:
    def __init__(self, metrics: list[Metric]):
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def gauge(name: str, value: float | Mapping[str, float], label: str = "") -> Metric:
    """A gauge of SCRAPE_GAUGES read at scrape time: one value, or one per `label` value."""
    help_text = SCRAPE_GAUGES[name]
    if isinstance(value, Mapping):
        family = GaugeMetricFamily(name, help_text, labels=[label])
        for key, v in sorted(value.items()):
            family.add_metric([key], v)
        return family
    return GaugeMetricFamily(name, help_text, value=value)


def prepare_multiproc_dir(path: str | Path) -> Path:
    """An empty directory for PROMETHEUS_MULTIPROC_DIR: the launcher calls it once, before any replica
    starts (files left by an earlier run would add old counts to new ones)."""
    target = Path(path)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def process_exited(pid: int) -> None:
    """Tell multiprocess mode a replica is gone, so its live-only gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


METRICS = HubMetrics()   # the process-wide default
