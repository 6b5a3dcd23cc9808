"""The reprocess queue → a planning step of a job, or one image re-rendered for it
(imgdrop.lifecycle.reprocess). A message whose handling raised is reported back to SQS alone;
its last try (REPROCESS_MAX_RECEIVES, the queue's maxReceiveCount) counts the image failed."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.lifecycle.reprocess import handle_message
from imgdrop.observability import logger, metrics, tracer
from imgdrop.services import build_services

services = build_services()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failed = []
    for record in event.get("Records") or []:
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        try:
            outcome = handle_message(json.loads(record["body"]), services, receive_count=receives)
        except Exception:
            logger.exception("A reprocess message failed", extra={"message_id": record.get("messageId")})
            failed.append({"itemIdentifier": record["messageId"]})
            continue
        logger.info("Reprocess message handled",
                    extra={"message_id": record.get("messageId"), "outcome": outcome})
    return {"batchItemFailures": failed}
