"""Deleting stored files for good, on the local folder or on a (versioned) S3 bucket."""

from __future__ import annotations

from django.core.files.storage import Storage, default_storage


def storage_delete_everywhere(name: str, storage: Storage | None = None) -> None:
    """Delete *name* and, on S3, every old version and delete marker of the key.

    On a versioned bucket a plain delete only adds a delete marker and every earlier
    version stays readable; erasure and retention must remove them all. Raises on a
    storage fault, so the caller keeps the row and retries later.
    """
    storage = storage or default_storage
    bucket = getattr(storage, "bucket", None)
    if bucket is None:
        storage.delete(name)
        return
    from storages.utils import clean_name

    key = storage._normalize_name(clean_name(name))  # type: ignore[attr-defined]
    client = bucket.meta.client
    paginator = client.get_paginator("list_object_versions")
    found = False
    for page in paginator.paginate(Bucket=bucket.name, Prefix=key):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            if v["Key"] == key
        ]
        if doomed:
            found = True
            reply = client.delete_objects(
                Bucket=bucket.name, Delete={"Objects": doomed, "Quiet": True}
            )
            if reply.get("Errors"):
                raise OSError(f"could not delete every version of {key}: {reply['Errors'][:3]}")
    if not found:
        storage.delete(name)  # an unversioned bucket answers list_object_versions too; be sure
