"""The worker's "deliver" job: fan events out to channels, send what is due, retry with
backoff, keep the log.

At least once: a delivery is marked delivered only after a 2xx (or the mail backend took
the message); anything else, 4xx included (receivers get misconfigured and fixed), is
retried with exponential backoff and jitter (30 s doubling to an hour) for DELIVERY_WINDOW.
Every attempt carries the event's ID as `webhook-id`, so a receiver drops duplicates.
Several workers share the work: a delivery is claimed with a conditional UPDATE before it
is sent, and no lock is held across the network call.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from notifications import transports
from notifications.models import (
    DELIVERY_WINDOW,
    Attempt,
    Delivery,
    Event,
    NotificationChannel,
)

logger = logging.getLogger("notifications")

FIRST_RETRY = 30.0  # seconds
MAX_RETRY = 3600.0
# A claimed delivery is not sent by another worker for this long (well over the 10 s a
# send may take); a worker killed mid-send hands it back when it passes.
CLAIM_LEASE = timedelta(minutes=2)
BATCH = 20
LOG_KEPT = 200  # attempts kept per channel; the page shows 50
EVENTS_KEPT = timedelta(days=3)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failures: 30 s doubling up to an hour,
    with ±10 % jitter so a receiver's outage does not end in a stampede."""
    base = min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempts - 1, 20))
    return base * random.uniform(0.9, 1.1)


def fan_out(now: datetime | None = None) -> int:
    """One Delivery per listening channel for each new event. Returns the events handled."""
    now = now or timezone.now()
    handled = 0
    for event in Event.objects.to_fan_out()[:100]:
        with transaction.atomic():
            # Claimed by a conditional UPDATE: another worker's fan-out skips it.
            if not Event.objects.filter(pk=event.pk, fanned_out=False).update(fanned_out=True):
                continue
            channels = NotificationChannel.objects.listening(event)
            Delivery.objects.bulk_create(
                [Delivery(channel=channel, event=event, next_attempt_at=now) for channel in channels],
                ignore_conflicts=True,
            )
        handled += 1
    return handled


def deliver_due(now: datetime | None = None) -> int:
    """Send up to BATCH due deliveries. Returns how many were attempted."""
    now = now or timezone.now()
    sent = 0
    due = Delivery.objects.due(now).select_related("event", "channel", "channel__workspace")[:BATCH]
    for delivery in due:
        claimed = Delivery.objects.filter(
            pk=delivery.pk, status=Delivery.Status.PENDING, next_attempt_at=delivery.next_attempt_at
        ).update(next_attempt_at=now + CLAIM_LEASE)
        if not claimed:
            continue
        attempt(delivery, now)
        sent += 1
    return sent


def attempt(delivery: Delivery, now: datetime) -> transports.Outcome:
    """Send `delivery` once and record the outcome (log, delivery, channel)."""
    channel, event = delivery.channel, delivery.event
    try:
        outcome = transports.send(channel, event, now)
    except Exception as error:
        # A bug or an unreadable secret must not stop the other deliveries.
        logger.exception("notification to channel %s failed unexpectedly", channel.pk)
        outcome = transports.Outcome(False, error=f"Unexpected error ({type(error).__name__}).")
    Attempt.objects.create(
        channel=channel,
        delivery=delivery,
        at=now,
        event_kind=event.kind,
        event_id=event.event_id,
        ok=outcome.ok,
        status_code=outcome.status_code,
        error=outcome.error[:300],
        duration_ms=outcome.duration_ms,
    )
    attempts = delivery.attempts + 1
    if outcome.ok:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED, attempts=attempts)
        channel.record_success(now)
    else:
        logger.info(
            "notification %s to channel %s failed (attempt %d): %s",
            event.event_id,
            channel.pk,
            attempts,
            outcome.error,
        )
        if now - event.created_at >= DELIVERY_WINDOW:
            Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.GAVE_UP, attempts=attempts)
        else:
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=attempts, next_attempt_at=now + timedelta(seconds=retry_delay(attempts))
            )
        channel.record_failure(now, outcome.error or f"HTTP {outcome.status_code}")
    return outcome


def prune(now: datetime | None = None) -> int:
    """Drop old events (their deliveries go with them) and trim each channel's log."""
    now = now or timezone.now()
    removed, _ = Event.objects.filter(fanned_out=True, created_at__lt=now - EVENTS_KEPT).delete()
    for channel_id in Attempt.objects.order_by().values_list("channel_id", flat=True).distinct():
        keep = Attempt.objects.filter(channel_id=channel_id).values_list("pk", flat=True)[
            LOG_KEPT : LOG_KEPT + 1
        ]
        if keep:
            Attempt.objects.filter(channel_id=channel_id, pk__lte=keep[0]).delete()
    return removed


def run(now: datetime | None = None) -> bool:
    """One round of the deliver job: whether there was work."""
    return bool(fan_out(now) + deliver_due(now))
