"""Writing the export archive of one subject: the registry, streamed into a zip (DSR-1).

Everything here streams: rows come from server-side cursors in chunks and are written
to the zip one JSON document per registry entry, row by row; stored files are copied in
chunks; per-member hashes go to a temporary file, not a list. Memory stays bounded by
the chunk sizes whatever the subject holds. The layout and the JSON schema are
documented (and versioned) in dsr/EXPORT_SCHEMA.md; change both together.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import IO, Any
from uuid import UUID

from django.conf import settings
from django.core.files.storage import Storage
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from dsr.models import Ticket
from dsr.registry import Category, PersonalData, registry

SCHEMA = "dsr-export/1"
ROW_CHUNK = 2000  # rows per server-side cursor fetch
READ_CHUNK = 256 * 1024  # bytes per read from storage
FLUSH_BYTES = 256 * 1024  # JSON text buffered before it goes to the zip
# Earlier archives are listed (status, size, dates) but never copied into the new one:
# they are copies of this same data, and would nest archive in archive.
NO_FILE_COPY = frozenset({"dsr.ExportArchive"})
# A foreign key is exported as what the subject can recognise (an order's reference, a
# purpose's key), not as a bare id. Related models not listed here export the id.
RELATED: dict[str, tuple[str, ...]] = {
    "orders.Order": ("reference",),
    "dsr.Ticket": ("reference",),
    "consent.ConsentPurpose": ("key",),
    "consent.PolicyVersion": ("number",),
    "consent.Campaign": ("subject",),
    "consent.Audience": ("name",),
    "consent.Subscriber": ("email",),
    "consent.Disclosure": (
        "recipient__name",
        "disclosed_at",
        "categories",
        "purpose__key",
        "for_direct_marketing",
        "description",
    ),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StoredFileMissing(Exception):
    """A file a row names is not on the storage (deleted meanwhile): listed, not copied."""


# --- Who the subject is, and which rows are theirs -------------------------------------------
@dataclass(frozen=True)
class Subject:
    user: User | None
    # Rows carrying this address without an account link are the subject's too (a guest
    # order placed with it). Only an address the subject proved they control: the
    # account's verified email, or the email a public request verified.
    email: str

    @property
    def label(self) -> str:
        return self.user.email if self.user is not None else self.email


def export_subject(*, ticket: Ticket) -> Subject:
    user = ticket.user
    if user is not None:
        return Subject(user=user, email=user.email.lower() if user.email_verified_at else "")
    return Subject(user=None, email=(ticket.email or "").lower())


def subject_rows(*, entry: PersonalData, subject: Subject) -> QuerySet[Any] | None:
    """The entry's rows of *subject*: never another subject's (None: nothing to find)."""
    parts: list[Q] = []
    if subject.user is not None and entry.subject is not None:
        parts.append(entry.subject_filter(subject.user))
    if subject.email and entry.subject_email:
        by_email = Q(**{f"{entry.subject_email}__iexact": subject.email})
        if entry.subject:
            # A row linked to an account belongs to that account, whatever email it holds.
            by_email &= Q(**{f"{entry.subject}__isnull": True})
        parts.append(by_email)
    if not parts:
        return None
    return entry.model._default_manager.filter(reduce(or_, parts)).order_by("pk")


# --- The columns of one entry's JSON document -----------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str  # the key in the JSON row
    lookup: str  # the ORM lookup it is read from
    category: str = ""


def _relation_columns(name: str, related_label: str, category: str) -> list[Column]:
    subs = RELATED.get(related_label)
    if subs is None:
        return [Column(name, name, category)]
    if len(subs) == 1:
        return [Column(name, f"{name}__{subs[0]}", category)]
    return [Column(f"{name}_{sub.replace('__', '_')}", f"{name}__{sub}", category) for sub in subs]


def entry_columns(entry: PersonalData) -> list[Column]:
    """id, the parent's key (an order's reference for a photo), then the export fields."""
    meta = entry.model._meta
    columns = [Column("id", "pk")]
    exported = [f for f in entry.export_fields if f not in entry.file_fields]
    hop = (entry.subject or "").split("__")[0] if "__" in (entry.subject or "") else ""
    if hop and hop not in exported:
        parent = meta.get_field(hop)
        if parent.related_model is not None and parent.related_model._meta.label in RELATED:
            columns += _relation_columns(hop, parent.related_model._meta.label, "")
    for name in exported:
        model_field = meta.get_field(name)
        category = entry.fields.get(name, "")
        if model_field.is_relation and model_field.related_model is not None:
            columns += _relation_columns(name, model_field.related_model._meta.label, category)
        else:
            columns.append(Column(name, name, category))
    return columns


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def json_row(row: dict[str, Any]) -> str:
    """One row as the archive writes it (the benchmark's floor writes the same bytes)."""
    return json.dumps(row, default=_json_default, ensure_ascii=False)


def file_member_name(label: str, pk: Any, field_name: str, stored_name: str) -> str:
    base = _UNSAFE.sub("_", posixpath.basename(stored_name))[-80:] or "file"
    return f"files/{label}/{pk}-{field_name}-{base}"


# --- Reading stored files in chunks ---------------------------------------------------------
def storage_chunks(storage: Storage, name: str, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """The stored file's bytes, streamed (S3: straight from GetObject, never the whole body).

    Raises StoredFileMissing when it is not there; any other fault propagates (transient).
    """
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        from botocore.exceptions import ClientError
        from storages.utils import clean_name

        key = storage._normalize_name(clean_name(name))  # type: ignore[attr-defined]
        try:
            body = bucket.meta.client.get_object(Bucket=bucket.name, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise StoredFileMissing(name) from exc
            raise
        try:
            yield from body.iter_chunks(chunk)
        finally:
            body.close()
        return
    try:
        fh = storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise StoredFileMissing(name) from exc
    with fh:
        while data := fh.read(chunk):
            yield data


# --- The zip writer ---------------------------------------------------------------------------
@dataclass
class EntrySummary:
    label: str
    description: str
    purpose: str
    lawful_basis: str
    categories: list[str]
    retention: str
    on_erasure: str
    exportable: bool = True  # False: never copied into an archive (credentials, sessions)
    document: str = ""
    rows: int = 0
    files: int = 0
    missing_files: int = 0


@dataclass
class ArchiveSummary:
    entries: list[EntrySummary] = field(default_factory=list)
    invoices: int = 0
    members: int = 0
    bytes_written: int = 0
    missing: list[str] = field(default_factory=list)
    # The whole archive, set once it is complete.
    sha256: str = ""
    size: int = 0

    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.entries)

    @property
    def files(self) -> int:
        return sum(e.files for e in self.entries)

    def contents(self) -> dict[str, Any]:
        """Counts only (no personal data): stored on the archive row and the ticket."""
        return {
            "schema": SCHEMA,
            "entries": {
                e.label: {"rows": e.rows, "files": e.files} for e in self.entries if e.rows
            },
            "rows": self.rows,
            "files": self.files,
            "invoices": self.invoices,
            "missing_files": len(self.missing),
        }


class HashingWriter:
    """A forward-only output: the archive's sha256 and size are known when it is written.

    It has no seek(), so zipfile writes each member's sizes after its data (a data
    descriptor, readable by every unzip tool) instead of seeking back: one pass over the
    bytes, and no second read of a large archive just to hash it.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.out.flush()


class _Member:
    """One zip member being written: counts and hashes what goes in."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha.update(data)
        self.size += len(data)


class ArchiveWriter:
    """Adds members to an open zip and records each one's size and sha256 for the manifest."""

    def __init__(self, zf: zipfile.ZipFile, now: datetime) -> None:
        self.zf = zf
        self.now = now
        self.stamp = timezone.localtime(now).timetuple()[:6]
        # One JSON line per member: the manifest's list, kept on disk rather than in memory.
        self.hashes = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.summary = ArchiveSummary()

    def close(self) -> None:
        self.hashes.close()

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        # JSON and HTML shrink; photos are compressed already and are stored as they are.
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16
        return info

    def add(self, name: str, chunks: Iterator[bytes], *, compress: bool) -> int:
        with self.zf.open(self._info(name, compress), "w", force_zip64=True) as handle:
            member = _Member(handle)
            for data in chunks:
                member.write(data)
        self._record(name, member)
        return member.size

    def _record(self, name: str, member: _Member) -> None:
        self.hashes.write(
            json.dumps({"path": name, "size": member.size, "sha256": member.sha.hexdigest()}) + "\n"
        )
        self.summary.members += 1
        self.summary.bytes_written += member.size

    def add_file(self, name: str, storage: Storage, stored_name: str) -> bool:
        """Copy a stored file in; False (nothing added) when it is gone from storage."""
        chunks = storage_chunks(storage, stored_name)
        try:
            first = next(chunks, b"")
        except StoredFileMissing:
            return False
        self.add(name, _prepend(first, chunks), compress=False)
        return True

    def add_text(self, name: str, text: str) -> None:
        self.add(name, iter([text.encode("utf-8")]), compress=True)

    def manifest_lines(self) -> Iterator[bytes]:
        self.hashes.seek(0)
        first = True
        for line in self.hashes:
            yield (("\n  " if first else ",\n  ") + line.rstrip("\n")).encode("utf-8")
            first = False


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _entry_summary(entry: PersonalData, purposes: dict[str, Any]) -> EntrySummary:
    info = purposes.get(entry.purpose)
    return EntrySummary(
        label=entry.label,
        description=entry.description or str(entry.model._meta.verbose_name_plural),
        purpose=info.name if info is not None else entry.purpose,
        lawful_basis=info.basis_text if info is not None else "",
        categories=[Category(c).label for c in entry.categories],
        retention=entry.retention_describe()
        or "kept while your account exists, unless you ask for erasure",
        on_erasure=entry.erasure.describe(),
    )


def _json_document(
    entry: PersonalData, summary: EntrySummary, qs: QuerySet[Any], columns: list[Column]
) -> Iterator[bytes]:
    """The entry's JSON document, produced row by row (see EXPORT_SCHEMA.md)."""
    header = {
        "schema": SCHEMA,
        "entry": entry.label,
        "description": summary.description,
        "purpose": {"key": entry.purpose, "name": summary.purpose},
        "lawful_basis": summary.lawful_basis,
        "categories": summary.categories,
        "fields": [
            {"name": c.name, "category": Category(c.category).label if c.category else ""}
            for c in columns
        ]
        + ([{"name": "files", "category": "Images"}] if entry.file_fields else []),
        "retention": summary.retention,
        "on_erasure": summary.on_erasure,
    }
    yield (json_row(header)[:-1] + ', "rows": [').encode("utf-8")
    names = [c.name for c in columns]
    lookups = [c.lookup for c in columns] + list(entry.file_fields)
    width = len(names)
    buffer: list[str] = []
    size = 0
    count = 0
    for values in qs.values_list(*lookups).iterator(chunk_size=ROW_CHUNK):
        row = dict(zip(names, values[:width], strict=True))
        stored = [(f, n) for f, n in zip(entry.file_fields, values[width:], strict=True) if n]
        if stored:
            row["files"] = {f: file_member_name(entry.label, row["id"], f, n) for f, n in stored}
        text = ("\n" if count == 0 else ",\n") + json_row(row)
        count += 1
        buffer.append(text)
        size += len(text)
        if size >= FLUSH_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append(f'\n], "row_count": {count}}}\n')
    yield "".join(buffer).encode("utf-8")
    summary.rows = count


def _write_files(
    writer: ArchiveWriter, entry: PersonalData, summary: EntrySummary, qs: QuerySet[Any]
) -> None:
    storage = _storage()
    for pk, *names in qs.values_list("pk", *entry.file_fields).iterator(chunk_size=ROW_CHUNK):
        for field_name, stored_name in zip(entry.file_fields, names, strict=True):
            if not stored_name:
                continue
            member = file_member_name(entry.label, pk, field_name, stored_name)
            if writer.add_file(member, storage, stored_name):
                summary.files += 1
            else:
                summary.missing_files += 1
                writer.summary.missing.append(member)


def _storage() -> Storage:
    from django.core.files.storage import default_storage

    return default_storage


# --- Rendered documents: invoices, the summary page, the read-me, the manifest ---------------
def _invoices(writer: ArchiveWriter, qs: QuerySet[Any]) -> None:
    context = {
        "site_name": settings.SITE_NAME,
        "seller_name": settings.SELLER_NAME,
        "seller_address": settings.SELLER_ADDRESS,
    }
    for invoice in qs.iterator(chunk_size=ROW_CHUNK):
        html = render_to_string("dsr/export/invoice.html", {**context, "invoice": invoice})
        writer.add_text(f"invoices/{_UNSAFE.sub('_', invoice.display_number)}.html", html)
        writer.summary.invoices += 1


# Registry entries that also get a human-readable document per row.
RENDERED: dict[str, Callable[[ArchiveWriter, QuerySet[Any]], None]] = {
    "orders.Invoice": _invoices,
}


def _authorities() -> list[Any]:
    from consent.models import SupervisoryAuthority

    return list(SupervisoryAuthority.objects.all())


def _documents_context(ticket: Ticket, subject: Subject, writer: ArchiveWriter) -> dict[str, Any]:
    from django.urls import reverse

    summary = writer.summary
    return {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "privacy_url": settings.SITE_URL + reverse("privacy"),
        "contact": settings.PRIVACY_CONTACT_EMAIL,
        "ticket": ticket,
        "subject_label": subject.label,
        "generated_at": writer.now,
        "schema": SCHEMA,
        "entries": list(summary.entries),
        "with_rows": [e for e in summary.entries if e.rows],
        "without_rows": [e for e in summary.entries if not e.rows],
        "summary": summary,
        "authorities": _authorities(),
        "export_days": settings.DSR_EXPORT_DAYS,
    }


def _manifest(writer: ArchiveWriter, ticket: Ticket) -> Iterator[bytes]:
    head = {
        "schema": SCHEMA,
        "generated_at": writer.now.isoformat(),
        "request": ticket.reference,
        "contents": writer.summary.contents(),
        "missing_files": writer.summary.missing,
    }
    yield (json_row(head)[:-1] + ', "files": [').encode("utf-8")
    yield from writer.manifest_lines()
    yield b"\n]}\n"


def archive_write(*, ticket: Ticket, out: IO[bytes], now: datetime | None = None) -> ArchiveSummary:
    """Write the subject's whole archive as a zip into *out*, front to back (streamed)."""
    from consent.selectors import processing_purposes

    now = now or timezone.now()
    subject = export_subject(ticket=ticket)
    purposes = processing_purposes()
    sink = HashingWriter(out)
    with zipfile.ZipFile(sink, "w", allowZip64=True) as zf:  # type: ignore[call-overload]
        writer = ArchiveWriter(zf, now)
        try:
            for entry in registry:
                columns = entry_columns(entry) if entry.export_fields else []
                qs = subject_rows(entry=entry, subject=subject) if columns else None
                summary = _entry_summary(entry, purposes)
                summary.exportable = bool(columns)
                writer.summary.entries.append(summary)
                if qs is None or not qs.exists():
                    # Nothing exported (credentials), no way to this subject, or none of
                    # theirs: index.html lists these kinds of data without a document.
                    continue
                summary.document = f"data/{entry.label}.json"
                writer.add(
                    summary.document, _json_document(entry, summary, qs, columns), compress=True
                )
                if summary.rows and entry.file_fields and entry.label not in NO_FILE_COPY:
                    _write_files(writer, entry, summary, qs)
                if summary.rows and entry.label in RENDERED:
                    RENDERED[entry.label](writer, qs)
            context = _documents_context(ticket, subject, writer)
            writer.add_text("index.html", render_to_string("dsr/export/index.html", context))
            writer.add_text("README.txt", render_to_string("dsr/export/README.txt", context))
            writer.add("manifest.json", _manifest(writer, ticket), compress=True)
        finally:
            writer.close()
    sink.flush()
    writer.summary.sha256 = sink.sha.hexdigest()
    writer.summary.size = sink.size
    return writer.summary
