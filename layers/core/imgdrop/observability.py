"""Logger, Tracer and Metrics, created once for every function."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# Only the libraries imgdrop calls through: botocore (boto3, PynamoDB) and http.client (webhook
# deliveries). Patching everything the X-Ray SDK knows imports requests, sqlite3 and others at
# every cold start to patch them, though no function uses them.
tracer = Tracer(patch_modules=("botocore", "httplib"))
metrics = Metrics()
