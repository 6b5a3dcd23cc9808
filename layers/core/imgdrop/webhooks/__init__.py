"""Webhooks: a tenant's HTTPS endpoints get its image events (ready, failed, duplicate, deleted),
signed as Standard Webhooks specify and delivered at least once.

- registry: the API's routes (create, list, delete, deliveries);
- events: `notify`, called where images settle (lifecycle.finalize) and on DELETE; an event told
  again is the same delivery, under the same `webhook-id`;
- urls: which URLs may be called (SSRF), at registration and at every delivery;
- signing: `whsec_` secrets and the `webhook-*` headers (the `standardwebhooks` package);
- delivery: one attempt per queue message, retries with backoff for 24 hours;
- unqueued: deliveries whose first message SQS refused, queued again by the sweep.
"""

from imgdrop.webhooks.events import notify

__all__ = ["notify"]
