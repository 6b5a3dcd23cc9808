"""Scheduled: expire uploads that never arrived, fail stuck ones, remove orphan upload objects."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.lifecycle.finalize import EventPublisher
from imgdrop.lifecycle.sweep import sweep
from imgdrop.observability import logger, metrics
from imgdrop.services import build_services

services = build_services()
events = EventPublisher(services.settings.event_bus_name)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep(services, events)
    metrics.add_metric(name="UploadsExpired", unit="Count", value=len(report.expired))
    logger.info("Sweep done", extra=asdict(report))
    return asdict(report)
