"""The webhook queue → one delivery attempt per message (imgdrop.webhooks.delivery).

A batch's attempts run side by side (each may wait up to 10 s for its endpoint); a message
whose handling raised is reported back to SQS alone, which hands it over again after the
visibility timeout and, after maxReceiveCount tries, to the dead-letter queue."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.observability import logger, metrics, tracer
from imgdrop.services import build_services
from imgdrop.webhooks.delivery import handle_message

services = build_services()


def _handle(record: dict[str, Any]) -> str | None:
    """The message's id when it must be tried again."""
    try:
        outcome = handle_message(json.loads(record["body"]), services)
    except Exception:
        logger.exception("A webhook message failed", extra={"message_id": record.get("messageId")})
        return str(record["messageId"])
    logger.info("Webhook message handled", extra={"message_id": record.get("messageId"), "outcome": outcome})
    return None


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    with ThreadPoolExecutor(max(1, min(10, len(records)))) as pool:
        failed = [message_id for message_id in pool.map(_handle, records) if message_id]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
