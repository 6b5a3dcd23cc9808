"""SQS queues: the webhook deliveries' and the reprocess jobs'. Messages are small JSON documents
(keys of the table's records), never payloads: those stay in DynamoDB."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imgdrop.errors import StorageError

_RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)
# SQS holds a message back at most 15 minutes (DelaySeconds); longer waits are chained.
MAX_DELAY_SECONDS = 900
BATCH = 10


class Queue:
    def __init__(self, url: str):
        self.url = url

    @cached_property
    def _client(self) -> Any:
        return boto3.client("sqs", config=_RETRIES)

    def _require(self) -> None:
        if not self.url:
            raise StorageError("The queue is not configured.")

    def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        self._require()
        try:
            self._client.send_message(
                QueueUrl=self.url,
                MessageBody=json.dumps(body, separators=(",", ":")),
                DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The message could not be queued.") from exc

    def send_many(self, bodies: list[dict[str, Any]]) -> None:
        """Ten to a request; entries SQS refused are sent again once, then it is an error."""
        self._require()
        for start in range(0, len(bodies), BATCH):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(body, separators=(",", ":"))}
                for n, body in enumerate(bodies[start : start + BATCH])
            ]
            for _ in range(2):
                try:
                    answer = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
                except (BotoCoreError, ClientError) as exc:
                    raise StorageError("The messages could not be queued.") from exc
                failed = {entry["Id"] for entry in answer.get("Failed", [])}
                entries = [entry for entry in entries if entry["Id"] in failed]
                if not entries:
                    break
            if entries:
                raise StorageError(f"{len(entries)} messages could not be queued.")
