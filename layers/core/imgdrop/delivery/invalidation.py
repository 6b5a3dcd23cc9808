"""CloudFront invalidations: the cached copies of an image's former public URLs go when it turns
private or is deleted. A no-op without a distribution (CDN_DISTRIBUTION_ID empty: the local CDN
caches nothing, tests have no CDN)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import Any

MAX_PATHS = 3000  # CloudFront's limit per invalidation request


def caller_reference(paths: Iterable[str], token: str) -> str:
    """CloudFront's CallerReference for an invalidation of `paths` caused by the change `token`
    names (e.g. "{image id}:{record version}" or an event id): a retry of the same change sends the
    same reference (CloudFront answers the existing invalidation, creates no second one); two
    changes, or two path sets, differ."""
    digest = hashlib.sha256("\n".join([token, *sorted(set(paths))]).encode()).hexdigest()
    return f"imgdrop-{digest[:48]}"


class Invalidator:
    """`invalidate(paths, token)` through cloudfront.create_invalidation on `distribution_id`;
    the boto3 client is made on first use unless one is given."""

    def __init__(self, distribution_id: str, *, client: Any = None):
        self.distribution_id = distribution_id
        self._client = client
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.distribution_id)

    def _cloudfront(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client("cloudfront")
        return self._client

    def invalidate(self, paths: Iterable[str], token: str) -> list[str]:
        """Invalidate `paths` (CDN paths, `/public/t/id/*`); answers the invalidation ids (none
        when disabled or when there is nothing to invalidate). Errors (throttling, too many
        invalidations in progress) propagate: the caller decides whether to retry."""
        unique = sorted(set(paths))
        if not self.enabled or not unique:
            return []
        ids: list[str] = []
        for start in range(0, len(unique), MAX_PATHS):
            chunk = unique[start:start + MAX_PATHS]
            answer = self._cloudfront().create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(chunk), "Items": chunk},
                    "CallerReference": caller_reference(chunk, token),
                },
            )
            ids.append(str(answer["Invalidation"]["Id"]))
        return ids
