"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with the reference
`standardwebhooks` package (3.5 kB, standard library only), so a receiver verifies with the same
package: `Webhook(secret).verify(body, headers)`.

Every attempt of a delivery carries the same `webhook-id` and body, with the attempt's own
`webhook-timestamp` and the signature over `{id}.{timestamp}.{body}` (receivers refuse timestamps
older than 5 minutes, so a retry is signed anew).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix  # nosec B105
SECRET_BYTES = 32
USER_AGENT = "imgdrop-webhooks/1.0"


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks secrets are."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(secret: str, message_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The headers of one attempt: webhook-id, webhook-timestamp, webhook-signature (v1)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
