"""S3 ObjectCreated → verify, render, dedupe, store variants. Outcomes go to finalize
through the function's Lambda destinations; an exception is retried, then reaches OnFailure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.lifecycle.processing import Outcome, process_upload, run_id_for
from imgdrop.observability import logger, metrics, tracer
from imgdrop.services import build_services
from imgdrop.store.idempotency import SpreadDynamoDBPersistenceLayer

services = build_services()
persistence = SpreadDynamoDBPersistenceLayer(services.settings.table_name)
idempotency = IdempotencyConfig(expires_after_seconds=24 * 3600)


@idempotent_function(data_keyword_argument="s3_object", config=idempotency, persistence_store=persistence)
def process_object(s3_object: dict[str, Any]) -> dict[str, Any]:
    """One delivery of one object version is processed once, however often S3 sends it."""
    run_id = run_id_for(s3_object["etag"], s3_object["sequencer"])
    return process_upload(s3_object["key"], services, run_id).as_dict()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    outcomes = []
    for record in event.records:
        s3_object = {
            "bucket": record.s3.bucket.name,
            "key": S3Event({"Records": [record.raw_event]}).object_key,
            "etag": record.s3.get_object.etag,
            "sequencer": record.s3.get_object.sequencer,
        }
        try:
            outcome = process_object(s3_object=s3_object)
        except IdempotencyAlreadyInProgressError:
            # S3 sent the same event twice and the other delivery is at work: it settles the image.
            outcome = Outcome("skipped").as_dict()
        metrics.add_metric(name=f"Outcome_{outcome['outcome']}", unit="Count", value=1)
        outcomes.append(outcome)
    return {"outcomes": outcomes}
