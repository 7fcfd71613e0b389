"""export_vs_floor_ratio and export_peak_mib: the DSR export of a heavy subject (DSR-1).

The subject (tests/bench/dsr_subject.py): 500 orders, 2,000 stored image files of
~200 KB on S3 (the moto server of scripts/testenv.py), 20,000 request-log lines, 300
consent events, invoices, payments, notifications and earlier tickets, on PostgreSQL,
beside another customer who must not appear. --quick makes a tenth of it.

* export_vs_floor_ratio: seconds of ``export_build`` (the service the Celery task
  calls: claim, walk the registry, stream JSON and files into a local zip, store it on
  S3, hash it, mark it ready and fulfil the ticket) / seconds of a floor doing the same
  essential work in the same run with nothing else: the same rows selected by the same
  SQL (compiled beforehand), serialised to the same JSON bytes, written into a zip with
  the same compression, the same objects read from S3 (keys listed beforehand) and the
  zip uploaded to S3. The floor writes no index, manifest, invoices or hashes: what
  those cost counts against the export. Rounds alternate which goes first; the
  headline is the median of the rounds' ratios. Every export is checked: ready, the
  subject's row and file counts, and no byte of the other customer.
* export_peak_mib: in a fresh process (Django set up on the bench database and bucket,
  warmed up by exporting the other customer), the RSS high-water mark (VmHWM, reset
  after the warm-up) minus the RSS before the heavy subject's ``export_build``: every
  allocation, native ones included (zlib, psycopg, boto), which tracemalloc would miss.
  Goal < 100 MiB, whatever the subject's size (the archive is ~400 MB).

Both share one seeded subject per run (and the erasure benchmark seeds its own).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

from tests.bench.common import BenchContext, BenchResult, log
from tests.bench.dsr_subject import (
    BenchS3,
    SubjectInfo,
    bench_s3,
    bucket_keys,
    seed_heavy_subject,
    use_storages,
)

RATIO_NAME = "export_vs_floor_ratio"
PEAK_NAME = "export_peak_mib"
RATIO_GOAL = "<= 1.5"
PEAK_GOAL = "< 100"
FULL_ROUNDS = 3
QUICK_ROUNDS = 2


@dataclass
class Seeded:
    s3: BenchS3
    info: SubjectInfo


@dataclass
class Timing:
    ours_s: list[float] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    ours_bytes: int = 0
    floor_bytes: int = 0
    contents: dict[str, Any] = field(default_factory=dict)


_SEEDED: dict[bool, Seeded] = {}


def _seeded(ctx: BenchContext) -> Seeded:
    """One heavy subject per run (both benchmarks of this module share it)."""
    if ctx.quick not in _SEEDED:
        from django.core.files.storage import default_storage

        s3 = bench_s3()
        log(f"seeding the heavy subject on bucket {s3.bucket}{' (quick)' if ctx.quick else ''}")
        with use_storages(s3.storages):
            info = seed_heavy_subject(quick=ctx.quick, storage=default_storage)
        log(
            f"  seeded in {info.seconds:.1f}s: {len(info.file_keys):,} files "
            f"({info.file_bytes / 2**20:.0f} MiB), {info.counts['accounts.RequestLog']:,} "
            "log lines"
        )
        _SEEDED[ctx.quick] = Seeded(s3, info)
    return _SEEDED[ctx.quick]


def _new_archive(user_id: int) -> int:
    """A verified, in-progress access request of *user_id* and its pending archive."""
    from django.utils import timezone

    from dsr.models import Channel, ExportArchive, IdentityCheck, RequestType, Ticket
    from dsr.models import TicketStatus as S

    now = timezone.now()
    ticket = Ticket.objects.create(
        reference=f"DSR-X{uuid.uuid4().hex[:8].upper()}",
        type=RequestType.ACCESS,
        status=S.IN_PROGRESS,
        channel=Channel.ACCOUNT,
        user_id=user_id,
        received_at=now,
        verified_at=now,
        identity_check=IdentityCheck.LOGIN,
        calendar="IE",
        first_due=now.date(),
    )
    return ExportArchive.objects.create(ticket=ticket).pk


# --- The floor --------------------------------------------------------------------------------
@dataclass
class FloorPlan:
    queries: list[tuple[str, list[str], str, tuple[Any, ...]]]  # label, names, sql, params
    keys: list[str]  # S3 keys of the files, in the export's order


def _floor_plan(info: SubjectInfo, storage: Any) -> FloorPlan:
    """The same SQL and the same object keys as the export, prepared before the clock."""
    from storages.utils import clean_name

    from accounts.models import User
    from dsr.models import Ticket
    from dsr.registry import registry
    from dsr.services.export_archive import (
        NO_FILE_COPY,
        entry_columns,
        export_subject,
        subject_rows,
    )

    subject = export_subject(ticket=Ticket(user=User.objects.get(pk=info.user_id)))
    queries, keys = [], []
    for entry in registry:
        columns = entry_columns(entry) if entry.export_fields else []
        qs = subject_rows(entry=entry, subject=subject) if columns else None
        if qs is None or not qs.exists():
            continue
        lookups = [c.lookup for c in columns] + list(entry.file_fields)
        sql, params = qs.values_list(*lookups).query.sql_with_params()
        queries.append((entry.label, [c.name for c in columns], sql, params))
        if entry.file_fields and entry.label not in NO_FILE_COPY:
            for names in qs.values_list(*entry.file_fields):
                keys += [storage._normalize_name(clean_name(n)) for n in names if n]
    return FloorPlan(queries, keys)


def _floor(plan: FloorPlan, s3: BenchS3, path: str) -> int:
    """Select, serialise, zip, read the objects, upload: nothing else."""
    from django.db import connection

    from dsr.services.export_archive import json_row

    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for label, names, sql, params in plan.queries:
            width = len(names)
            member = zipfile.ZipInfo(f"data/{label}.json")
            member.compress_type = zipfile.ZIP_DEFLATED
            with connection.cursor() as cur, zf.open(member, "w", force_zip64=True) as out:
                cur.execute(sql, params)
                parts = []
                for values in cur.fetchall():
                    parts.append(json_row(dict(zip(names, values[:width], strict=True))))
                out.write(",\n".join(parts).encode("utf-8"))
        for n, key in enumerate(plan.keys):
            body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
            info = zipfile.ZipInfo(f"files/{n}")
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, body)
    s3.client.upload_file(path, s3.bucket, f"floor/{uuid.uuid4().hex}.zip")
    return os.path.getsize(path)


# --- Our export ------------------------------------------------------------------------------
def _ours(archive_id: int) -> None:
    from dsr.services.export import export_build

    result = export_build(archive_id=archive_id)
    if result != "ready":
        from dsr.models import ExportArchive

        error = ExportArchive.objects.get(pk=archive_id).last_error
        raise RuntimeError(f"export_build returned {result!r}: {error}")


def _check(archive_id: int, seeded: Seeded) -> dict[str, Any]:
    """The archive is ready, complete, and holds nothing of the other customer."""
    from dsr.models import ArchiveStatus, ExportArchive, TicketStatus

    archive = ExportArchive.objects.select_related("ticket").get(pk=archive_id)
    info = seeded.info
    problems = []
    if archive.status != ArchiveStatus.READY or archive.ticket.status != TicketStatus.FULFILLED:
        problems.append(f"archive {archive.status}, ticket {archive.ticket.status}")
    entries = archive.contents.get("entries", {})
    for label in ("accounts.RequestLog", "consent.ConsentEvent", "orders.Order"):
        if entries.get(label, {}).get("rows") != info.counts[label]:
            problems.append(f"{label}: {entries.get(label)} vs {info.counts[label]} seeded")
    if archive.contents.get("files") != len(info.file_keys):
        problems.append(f"{archive.contents.get('files')} files of {len(info.file_keys)}")
    obj = seeded.s3.client.get_object(Bucket=seeded.s3.bucket, Key=archive.file.name)["Body"]
    with tempfile.TemporaryFile() as tmp:
        for chunk in obj.iter_chunks(1024 * 1024):
            tmp.write(chunk)
        tmp.seek(0)
        with zipfile.ZipFile(tmp) as zf:
            for name in zf.namelist():
                if not name.startswith("files/") and info.other_email.encode() in zf.read(name):
                    problems.append(f"the other customer's address is in {name}")
    if problems:
        raise RuntimeError("the export is wrong: " + "; ".join(problems))
    return {"size": archive.size, "contents": archive.contents}


def _drop_archive(archive_id: int, s3: BenchS3) -> None:
    from dsr.models import ExportArchive

    name = ExportArchive.objects.get(pk=archive_id).file.name
    s3.client.delete_object(Bucket=s3.bucket, Key=name)


_TIMING: dict[bool, Timing] = {}


def _timing(ctx: BenchContext) -> Timing:
    if ctx.quick in _TIMING:
        return _TIMING[ctx.quick]
    from django.core.files.storage import default_storage
    from django.test import override_settings

    from config.celery import app as celery_app

    seeded = _seeded(ctx)
    timing = Timing()
    rounds = QUICK_ROUNDS if ctx.quick else FULL_ROUNDS
    # The fulfilled email goes through the locmem backend in this process, not a broker.
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with (
            use_storages(seeded.s3.storages),
            override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            tempfile.TemporaryDirectory(prefix="dsr-floor-", dir=ctx.var) as tmp,
        ):
            plan = _floor_plan(seeded.info, default_storage)
            # Warm-up (imports, templates, connections), as a worker would be: the other
            # customer's small export, and a first pass over the floor's plan.
            warm = _new_archive(seeded.info.other_user_id)
            _ours(warm)
            _drop_archive(warm, seeded.s3)
            for k in range(rounds):
                order = ("ours", "floor") if k % 2 == 0 else ("floor", "ours")
                for which in order:
                    if which == "ours":
                        archive_id = _new_archive(seeded.info.user_id)
                        started = time.perf_counter()
                        _ours(archive_id)
                        timing.ours_s.append(time.perf_counter() - started)
                        checked = _check(archive_id, seeded)
                        timing.ours_bytes = checked["size"]
                        timing.contents = checked["contents"]
                        _drop_archive(archive_id, seeded.s3)
                    else:
                        path = os.path.join(tmp, "floor.zip")
                        started = time.perf_counter()
                        timing.floor_bytes = _floor(plan, seeded.s3, path)
                        timing.floor_s.append(time.perf_counter() - started)
                        os.unlink(path)
                        for key in bucket_keys(seeded.s3.client, seeded.s3.bucket, "floor/"):
                            seeded.s3.client.delete_object(Bucket=seeded.s3.bucket, Key=key)
                    log(f"  round {k + 1}/{rounds}: {which} {timing_last(timing, which):.2f}s")
    finally:
        celery_app.conf.task_always_eager = eager
    _TIMING[ctx.quick] = timing
    return timing


def timing_last(timing: Timing, which: str) -> float:
    return (timing.ours_s if which == "ours" else timing.floor_s)[-1]


def _subject_details(info: SubjectInfo) -> dict[str, Any]:
    return {
        "subject": {
            "files": len(info.file_keys),
            "file_mib": round(info.file_bytes / 2**20, 1),
            "rows": info.counts,
            "seed_s": info.seconds,
        }
    }


def export_vs_floor_ratio(ctx: BenchContext) -> BenchResult:
    timing = _timing(ctx)
    ratios = [o / f for o, f in zip(timing.ours_s, timing.floor_s, strict=True)]
    return BenchResult(
        name=RATIO_NAME,
        value=round(statistics.median(ratios), 3),
        unit="x",
        goal=RATIO_GOAL,
        details={
            "export_s": [round(x, 2) for x in timing.ours_s],
            "floor_s": [round(x, 2) for x in timing.floor_s],
            "round_ratios": [round(r, 3) for r in ratios],
            "archive_mib": round(timing.ours_bytes / 2**20, 1),
            "floor_zip_mib": round(timing.floor_bytes / 2**20, 1),
            "archive_contents": timing.contents,
            **_subject_details(_seeded(ctx).info),
            "method": "export_build in this process vs a floor (same SQL, same JSON bytes, "
            "same zip compression, same S3 reads, zip uploaded), alternating order",
        },
    )


# --- Peak memory, in a fresh process ---------------------------------------------------------
_PEAK_SCRIPT = """
import json, sys
import django
django.setup()
from django.test import override_settings
from config.celery import app
app.conf.task_always_eager = True
args = json.loads(sys.argv[1])
def status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)
with override_settings(STORAGES=args["storages"],
                       EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
    from dsr.services.export import export_build
    assert export_build(archive_id=args["warm"]) == "ready"  # imports, connections, templates
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = status_kib("VmRSS")
    result = export_build(archive_id=args["heavy"])
    peak = status_kib("VmHWM")
print(json.dumps({"before_kib": before, "peak_kib": peak, "result": result}))
"""

_PEAK: dict[bool, dict[str, Any]] = {}


def export_peak_mib(ctx: BenchContext) -> BenchResult:
    if ctx.quick not in _PEAK:
        seeded = _seeded(ctx)
        warm = _new_archive(seeded.info.other_user_id)
        heavy = _new_archive(seeded.info.user_id)
        args = json.dumps({"storages": seeded.s3.storages, "warm": warm, "heavy": heavy})
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, args],
            cwd=ctx.root,
            env={**ctx.env, "PYTHONPATH": str(ctx.root)},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"the peak-memory process failed:\n{proc.stderr[-3000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        if report["result"] != "ready":
            from dsr.models import ExportArchive

            error = ExportArchive.objects.get(pk=heavy).last_error
            raise RuntimeError(f"export_build returned {report['result']!r}: {error}")
        with use_storages(seeded.s3.storages):
            report["archive_size"] = _check(heavy, seeded)["size"]
        _drop_archive(heavy, seeded.s3)
        _drop_archive(warm, seeded.s3)
        _PEAK[ctx.quick] = report
    report = _PEAK[ctx.quick]
    peak = (report["peak_kib"] - report["before_kib"]) / 1024
    return BenchResult(
        name=PEAK_NAME,
        value=round(peak, 1),
        unit="MiB",
        goal=PEAK_GOAL,
        details={
            "method": "VmHWM - VmRSS around export_build in a fresh warmed-up process",
            "baseline_mib": round(report["before_kib"] / 1024, 1),
            "archive_mib": round(report["archive_size"] / 2**20, 1),
            **_subject_details(_seeded(ctx).info),
        },
    )
