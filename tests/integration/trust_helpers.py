"""Helpers for the trust tests: S3 events with their own sequencer, and a gate that holds one
thread at a chosen step so a race happens on purpose."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from lambdas import sample


def image_path(image_id: str) -> tuple[str, str, dict[str, str]]:
    return f"/v1/images/{image_id}", "/v1/images/{id}", {"id": image_id}


def s3_event(bucket: str, key: str, size: int, sequencer: str, etag: str = "etag") -> dict[str, Any]:
    """One ObjectCreated record; each distinct sequencer is a distinct S3 event (a new run)."""
    event = copy.deepcopy(sample("process_s3_object_created.json"))
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update({"key": key, "size": size, "sequencer": sequencer, "eTag": etag})
    return event


class Gate:
    """Holds the thread named `thread_name` when `when(*args)` holds, until `release()`."""

    def __init__(self, thread_name: str, when: Callable[..., bool]):
        self.thread_name = thread_name
        self.when = when
        self.reached = threading.Event()
        self._open = threading.Event()
        self.fail_with: BaseException | None = None

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            name = threading.current_thread().name  # a run's pool threads carry its name: "A_0"
            if name.split("_")[0] == self.thread_name and self.when(*args, **kwargs):
                self.reached.set()
                assert self._open.wait(30), "the gate was never released"  # noqa: S101
                if self.fail_with is not None:
                    raise self.fail_with
            return original(*args, **kwargs)

        return gated

    def release(self, fail_with: BaseException | None = None) -> None:
        self.fail_with = fail_with
        self._open.set()
