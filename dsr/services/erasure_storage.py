"""Deleting a subject's stored files for good, in batches (DSR-3).

common.storage.storage_delete_everywhere deletes one file with one listing; an erasure of
a customer with thousands of files instead lists each order's own prefix once and sends
S3 ``delete_objects`` requests of up to 1,000 versions. Every version and delete marker
goes: on a versioned bucket a plain delete would leave every earlier version readable.

Each function raises on a storage fault (botocore errors, OSError), so the erasure step
that called it is marked blocked and retried; all of them are idempotent.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.core.files.storage import Storage

from common.storage import storage_delete_everywhere

S3_BATCH = 1000  # the most keys one delete_objects request takes


def top_prefix(name: str) -> str:
    """The storage prefix a file is counted under in the receipt ("o/", "profile-images/")."""
    head, sep, _ = name.partition("/")
    return head + "/" if sep else "(root)"


def _s3_key(storage: Any, name: str) -> str:
    from storages.utils import clean_name

    # Through a dummy leaf, so a configured location is applied and a trailing "/" kept.
    return str(storage._normalize_name(clean_name(name + "x")))[:-1]


class _S3Batch:
    """Collects versions to delete and sends them 1,000 at a time."""

    def __init__(self, storage: Any) -> None:
        self.client = storage.bucket.meta.client
        self.bucket = storage.bucket.name
        self.pending: list[dict[str, str]] = []
        self.versions = 0

    def add(self, key: str, version_id: str) -> None:
        self.pending.append({"Key": key, "VersionId": version_id})
        if len(self.pending) >= S3_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        reply = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": self.pending, "Quiet": True}
        )
        if reply.get("Errors"):
            raise OSError(f"could not delete every version: {reply['Errors'][:3]}")
        self.versions += len(self.pending)
        self.pending = []


def _s3_delete_prefixes(storage: Any, prefixes: Iterable[str], counts: Counter[str]) -> int:
    batch = _S3Batch(storage)
    paginator = batch.client.get_paginator("list_object_versions")
    for prefix in prefixes:
        key_prefix = _s3_key(storage, prefix)
        strip = len(key_prefix) - len(prefix)  # the configured location, if any
        seen: set[str] = set()  # a file is counted once, however many versions it had
        for page in paginator.paginate(Bucket=batch.bucket, Prefix=key_prefix):
            for version in page.get("Versions", []):
                if version["Key"] not in seen:
                    seen.add(version["Key"])
                    counts[top_prefix(version["Key"][strip:])] += 1
                batch.add(version["Key"], version["VersionId"])
            for marker in page.get("DeleteMarkers", []):
                batch.add(marker["Key"], marker["VersionId"])
    batch.flush()
    return batch.versions


def _local_delete_prefixes(storage: Storage, prefixes: Iterable[str], counts: Counter[str]) -> int:
    removed = 0
    for prefix in prefixes:
        root = storage.path(prefix.rstrip("/"))
        if not os.path.isdir(root):
            continue
        for folder, _, files in os.walk(root, topdown=False):
            for filename in files:
                os.remove(os.path.join(folder, filename))
                counts[top_prefix(prefix)] += 1
                removed += 1
            os.rmdir(folder)
    return removed


def storage_delete_prefixes(storage: Storage, prefixes: Iterable[str]) -> tuple[Counter[str], int]:
    """Delete every object (every version) under each prefix; (files per prefix, versions)."""
    counts: Counter[str] = Counter()
    prefixes = [p if p.endswith("/") else p + "/" for p in prefixes]
    if getattr(storage, "bucket", None) is not None:
        return counts, _s3_delete_prefixes(storage, prefixes, counts)
    return counts, _local_delete_prefixes(storage, prefixes, counts)


def storage_delete_children(
    storage: Storage, parent: str, children: set[str]
) -> tuple[Counter[str], int]:
    """Delete everything under ``<parent><child>/`` for each child, listing *parent* once.

    For a short-lived area shared by every order (the upload quarantine): one listing of
    it costs less than one listing per order of a customer with hundreds of orders.
    """
    counts: Counter[str] = Counter()
    if not children:
        return counts, 0
    parent = parent if parent.endswith("/") else parent + "/"
    if getattr(storage, "bucket", None) is None:
        try:
            dirs, _ = storage.listdir(parent)
        except FileNotFoundError:
            return counts, 0
        return storage_delete_prefixes(storage, [parent + d for d in dirs if d in children])
    batch = _S3Batch(storage)
    key_parent = _s3_key(storage, parent)
    paginator = batch.client.get_paginator("list_object_versions")
    seen: set[str] = set()
    for page in paginator.paginate(Bucket=batch.bucket, Prefix=key_parent):
        for kind in ("Versions", "DeleteMarkers"):
            for entry in page.get(kind, []):
                child = entry["Key"][len(key_parent) :].split("/", 1)[0]
                if child not in children:
                    continue
                if kind == "Versions" and entry["Key"] not in seen:
                    seen.add(entry["Key"])
                    counts[top_prefix(parent)] += 1
                batch.add(entry["Key"], entry["VersionId"])
    batch.flush()
    return counts, batch.versions


def storage_delete_names(storage: Storage, names: Iterable[str]) -> Counter[str]:
    """Delete single files (every version): the few that live outside an order's prefix."""
    counts: Counter[str] = Counter()
    for name in names:
        if name and storage.exists(name):
            counts[top_prefix(name)] += 1
        storage_delete_everywhere(name, storage)
    return counts


def storage_list_prefixes(storage: Storage, prefixes: Iterable[str]) -> list[str]:
    """Every key (any version, delete markers too) still under the prefixes: the leftovers."""
    found: list[str] = []
    prefixes = [p if p.endswith("/") else p + "/" for p in prefixes]
    if getattr(storage, "bucket", None) is not None:
        s3: Any = storage
        paginator = s3.bucket.meta.client.get_paginator("list_object_versions")
        for prefix in prefixes:
            for page in paginator.paginate(Bucket=s3.bucket.name, Prefix=_s3_key(s3, prefix)):
                found += [v["Key"] for v in page.get("Versions", [])]
                found += [m["Key"] for m in page.get("DeleteMarkers", [])]
        return found
    for prefix in prefixes:
        root = storage.path(prefix.rstrip("/"))
        for folder, _, files in os.walk(root):
            found += [os.path.join(folder, f) for f in files]
    return found


def storage_list_children(storage: Storage, parent: str, children: set[str]) -> list[str]:
    """Like storage_list_prefixes for ``<parent><child>/``, listing *parent* once."""
    parent = parent if parent.endswith("/") else parent + "/"
    if not children:
        return []
    if getattr(storage, "bucket", None) is None:
        return storage_list_prefixes(storage, [parent + c for c in children])
    s3: Any = storage
    key_parent = _s3_key(s3, parent)
    found: list[str] = []
    paginator = s3.bucket.meta.client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=s3.bucket.name, Prefix=key_parent):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            if entry["Key"][len(key_parent) :].split("/", 1)[0] in children:
                found.append(entry["Key"])
    return found


def storage_name_exists(storage: Storage, name: str) -> bool:
    """Does any version of *name* remain (S3: old versions and delete markers count)?"""
    if getattr(storage, "bucket", None) is None:
        return storage.exists(name)
    s3: Any = storage
    key = _s3_key(s3, name)
    reply = s3.bucket.meta.client.list_object_versions(Bucket=s3.bucket.name, Prefix=key)
    entries = reply.get("Versions", []) + reply.get("DeleteMarkers", [])
    return any(v["Key"] == key for v in entries)
