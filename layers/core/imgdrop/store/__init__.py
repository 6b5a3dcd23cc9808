"""Where imgdrop keeps things: the single DynamoDB table (db), the bucket (storage) and the
idempotency records (idempotency)."""
