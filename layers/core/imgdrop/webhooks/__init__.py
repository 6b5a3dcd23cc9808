"""Webhooks: a tenant's HTTPS endpoints get its image events (ready, failed, duplicate, deleted),
signed as Standard Webhooks specify and delivered at least once.

- registry: the API's routes (create, list, delete, deliveries);
- events: `notify`, called where images settle (lifecycle.finalize) and on DELETE;
- urls: which URLs may be called (SSRF), at registration and at every delivery;
- signing: `whsec_` secrets and the `webhook-*` headers (the `standardwebhooks` package);
- delivery: one attempt per queue message, retries with backoff for 24 hours.
"""

from imgdrop.webhooks.events import notify

__all__ = ["notify"]
