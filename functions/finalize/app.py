"""Lambda destination record of the process function → settle each image's status."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.delivery.signing import SIGNING_MODULES
from imgdrop.lifecycle.finalize import EventPublisher, settle_failure, settle_outcome
from imgdrop.lifecycle.processing import run_id_for
from imgdrop.observability import logger, metrics, tracer
from imgdrop.services import build_services
from imgdrop.snapshot import before_snapshot

services = build_services()
events = EventPublisher(services.settings.event_bus_name)

# Signing a private image's URLs loads cryptography on first use: into a SnapStart snapshot instead.
# (The signing key is read on a request, never into a snapshot.)
before_snapshot(*SIGNING_MODULES)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    condition = event.get("requestContext", {}).get("condition")
    settled: list[str | None] = []
    if condition == "Success":
        for outcome in (event.get("responsePayload") or {}).get("outcomes", []):
            settled.append(settle_outcome(outcome, services, events))
    else:
        error = event.get("responsePayload") or {}
        for record in (event.get("requestPayload") or {}).get("Records", []):
            s3_object = record.get("s3", {}).get("object", {})
            key = unquote_plus(s3_object.get("key", ""))
            run_id = run_id_for(s3_object.get("eTag"), s3_object.get("sequencer"))
            settled.append(settle_failure(key, error, run_id, services, events))
    logger.info("Finalized", extra={"condition": condition, "settled": settled})
    return {"settled": settled}
