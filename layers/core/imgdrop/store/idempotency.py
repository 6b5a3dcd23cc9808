"""powertools' idempotency records on imgdrop's single table, one partition per record.

With a sort key, powertools puts every record of a function under one static partition key
(`idempotency#{function}`): two writes per processing run, all on one partition, cap the whole
service near 500 runs a second. Here the idempotency key is the partition key and the sort key
is a constant, so records spread over the table like images do.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

RECORD_SORT_KEY = "IDEMPOTENCY"


class SpreadDynamoDBPersistenceLayer(DynamoDBPersistenceLayer):
    def __init__(self, table_name: str, **kwargs: Any):
        super().__init__(
            table_name=table_name, key_attr="pk", sort_key_attr="sk", expiry_attr="ttl", **kwargs
        )

    def _get_key(self, idempotency_key: str) -> dict[str, Any]:
        return {self.key_attr: {"S": idempotency_key}, "sk": {"S": RECORD_SORT_KEY}}
