"""What the domain functions get injected, built once per cold start from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgdrop.profiles import profiles_document
from imgdrop.settings import Settings, get_settings
from imgdrop.store.db import Repository, bind
from imgdrop.store.storage import ObjectStore

if TYPE_CHECKING:
    from imgdrop.dedupe.policy import NearDuplicatePolicy
    from imgdrop.delivery import Delivery, Invalidator
    from imgdrop.store.db import JobStore, WebhookStore
    from imgdrop.store.queue import Queue


@dataclass
class Services:
    settings: Settings
    repo: Repository
    objects: ObjectStore
    # The near-duplicate index; built lazily since the api only needs it for /similar.
    _index: Any = field(default=None, repr=False)
    _delivery: Any = field(default=None, repr=False)
    _invalidator: Any = field(default=None, repr=False)
    _webhooks: Any = field(default=None, repr=False)
    _jobs: Any = field(default=None, repr=False)
    _webhook_queue: Any = field(default=None, repr=False)
    _reprocess_queue: Any = field(default=None, repr=False)

    @property
    def index(self) -> Any:
        if self._index is None:
            from imgdrop.dedupe.index import NearDuplicateIndex
            from imgdrop.dedupe.stores import DynamoHashIndexStore

            self._index = NearDuplicateIndex(DynamoHashIndexStore(self.settings.table_name))
        return self._index

    @property
    def delivery(self) -> Delivery:
        """CDN URLs: unsigned for public files, signed (key from Secrets Manager) for the rest."""
        if self._delivery is None:
            from imgdrop.delivery import Delivery, SecretsManagerKey, UrlSigner

            settings = self.settings
            signer = None
            if settings.cdn_key_pair_id and settings.cdn_private_key_secret_arn:
                signer = UrlSigner(
                    settings.cdn_key_pair_id,
                    SecretsManagerKey(settings.cdn_private_key_secret_arn),
                    window_seconds=settings.signed_url_window_seconds,
                )
            self._delivery = Delivery(settings.cdn_base_url, signer)
        return self._delivery

    @property
    def invalidator(self) -> Invalidator:
        if self._invalidator is None:
            from imgdrop.delivery import Invalidator

            self._invalidator = Invalidator(self.settings.cdn_distribution_id)
        return self._invalidator

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook endpoints and their deliveries (imgdrop.webhooks)."""
        if self._webhooks is None:
            from imgdrop.store.db import WebhookStore

            self._webhooks = WebhookStore()
        return self._webhooks

    @property
    def jobs(self) -> JobStore:
        """Reprocess jobs (imgdrop.lifecycle.reprocess)."""
        if self._jobs is None:
            from imgdrop.store.db import JobStore

            self._jobs = JobStore()
        return self._jobs

    @property
    def webhook_queue(self) -> Queue:
        if self._webhook_queue is None:
            from imgdrop.store.queue import Queue

            self._webhook_queue = Queue(self.settings.webhook_queue_url)
        return self._webhook_queue

    @property
    def reprocess_queue(self) -> Queue:
        if self._reprocess_queue is None:
            from imgdrop.store.queue import Queue

            self._reprocess_queue = Queue(self.settings.reprocess_queue_url)
        return self._reprocess_queue

    def near_duplicate_policy(self, profile: str | None) -> NearDuplicatePolicy:
        from imgdrop.dedupe.policy import policy_for

        return policy_for(
            profile,
            profiles_document(),
            threshold=self.settings.near_duplicate_threshold,
            mode=self.settings.near_duplicate_mode,
        )


def build_services(settings: Settings | None = None) -> Services:
    settings = settings or get_settings()
    bind(settings.table_name)
    objects = ObjectStore(
        settings.bucket_name,
        public_endpoint_url=settings.public_s3_endpoint_url or settings.aws_endpoint_url,
    )
    return Services(settings=settings, repo=Repository(), objects=objects)
