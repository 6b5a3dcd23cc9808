"""Delivery: what imgdrop serves through its CDN, and how.

- `Delivery(base_url, signer).variant_answers(variants, privacy, fit_variants=...)` -> (the image
  object's `variants`, `srcset`); `.original_answer(original)` -> its `original` (always signed)
- `Invalidator(distribution_id).invalidate(paths, token)` -> CloudFront invalidation ids (none
  without a distribution)
- `verify_signed_url(url, public_keys, now=...)` -> None, or why CloudFront would refuse the URL

`imgdrop.services.Services` builds the Delivery and the Invalidator from the settings. Importing
this package imports no boto3, botocore or cryptography: they load on the first signature or
invalidation.
"""

from __future__ import annotations

from .invalidation import Invalidator, caller_reference
from .signing import (
    EXPIRED,
    TAMPERED,
    UNKNOWN_KEY,
    UNSIGNED,
    SecretsManagerKey,
    UrlSigner,
    canned_policy,
    split_signed_url,
    verify_signed_url,
    window_expires,
)
from .urls import Delivery, DeliveryNotConfigured, auto_key, extension

__all__ = [
    "EXPIRED",
    "TAMPERED",
    "UNKNOWN_KEY",
    "UNSIGNED",
    "Delivery",
    "DeliveryNotConfigured",
    "Invalidator",
    "SecretsManagerKey",
    "UrlSigner",
    "auto_key",
    "caller_reference",
    "canned_policy",
    "extension",
    "split_signed_url",
    "verify_signed_url",
    "window_expires",
]
