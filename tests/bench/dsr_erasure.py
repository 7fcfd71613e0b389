"""erasure_vs_floor_ratio: the DSR erasure of a heavy subject (DSR-3).

Two identical heavy subjects (tests/bench/dsr_subject.py: 500 orders, 2,000 stored
files of ~200 KB, 20,000 request-log lines, 300 consent events, invoices, payments,
notifications, earlier tickets), each beside another customer who must lose nothing,
each on its own *versioned* bucket of the moto S3 server (alike, so that neither run's
listings walk the other's files). --quick makes a tenth of it.

* ours: the erasure as it runs in production, in this process: ``erasure_start`` (plan
  the steps, start the ticket) and ``erasure_run`` (every step: sessions, queued work,
  suppression, every stored file with every version, each registry entry as declared
  with its counts, the account, the receipt, the email, the ticket reduced).
* the floor, on the second subject, in the same run: the same rows changed by raw SQL
  (one DELETE or UPDATE per registry entry, the subject's rows selected by the same
  compiled queries, the same anonymised/reduced values) in one transaction, and the same
  objects deleted with S3 ``delete_objects`` in batches of 1,000. Version ids are stored
  nowhere, so the floor lists them as the erasure does (one listing of "o/" when that
  takes fewer requests than one per order: the same choice); the listing and the
  deletes are timed apart in the details (floor_s3_list_s, floor_s3_delete_s).

The ratio ours/floor has a goal of 2x. Afterwards the registry-wide scan
(``erasure_leftovers``: rows of the subject except reduced legal-duty rows, live
sessions, and objects under the subject's keys) must find nothing for either subject,
and the other customers must still have all their files and rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from tests.bench.common import BenchContext, BenchResult, Check, log
from tests.bench.dsr_subject import (
    BenchS3,
    SubjectInfo,
    bench_s3,
    bucket_keys,
    drop_bucket,
    seed_heavy_subject,
    use_storages,
)

NAME = "erasure_vs_floor_ratio"
GOAL = "<= 2"


@dataclass
class FloorPlan:
    statements: list[tuple[str, list[Any]]]
    tokens: set[str]
    one_listing: bool  # the same choice as the erasure's (fewest S3 requests)


def _subject(user_id: int, email: str) -> Any:
    from accounts.models import User
    from dsr.models import Ticket
    from dsr.services.erasure_steps import Subject

    return Subject(ticket=Ticket(), user=User.objects.get(pk=user_id), emails=(email,))


def _floor_plan(info: SubjectInfo) -> FloorPlan:
    """The same rows (same compiled selections) and values as the erasure, as raw SQL."""
    from django.db import connection

    from dsr.registry import Anonymise, Delete, registry
    from dsr.services.erasure_steps import (
        USER_LABEL,
        entries_in_order,
        entry_rows,
        one_listing_is_cheaper,
        reduce_values,
        subject_orders,
    )

    subject = _subject(info.user_id, info.email)
    qn = connection.ops.quote_name
    statements: list[tuple[str, list[Any]]] = []
    user_entry = registry.get(USER_LABEL)
    assert user_entry is not None
    for entry in [*entries_in_order(), user_entry]:
        qs = entry_rows(entry, subject, own_ticket=True)
        if not qs.exists():
            continue
        meta = entry.model._meta
        select, params = qs.values("pk").query.sql_with_params()
        where = f"{qn(meta.pk.column)} IN ({select})"
        if isinstance(entry.erasure, Delete):
            # Identifiers from the models' meta, quoted; every value is a parameter.
            sql = f"DELETE FROM {qn(meta.db_table)} WHERE {where}"  # noqa: S608
            statements.append((sql, list(params)))
            continue
        if isinstance(entry.erasure, Anonymise):
            rows = list(qs) if entry.erasure.per_row else [None]
            for row in rows:
                values = entry.erasure.row_values(row) if row else entry.erasure.constant
                statements.append(_update(meta, values, where, list(params), connection))
        else:
            values = reduce_values(entry, entry.erasure)
            if values:  # a duty that keeps every declared field changes nothing
                statements.append(_update(meta, values, where, list(params), connection))
    tokens = set(subject_orders(subject).values_list("storage_token", flat=True))
    return FloorPlan(statements, tokens, one_listing_is_cheaper(len(tokens)))


def _update(
    meta: Any, values: dict[str, Any], where: str, params: list[Any], connection: Any
) -> tuple[str, list[Any]]:
    qn = connection.ops.quote_name
    sets, args = [], []
    for name, value in values.items():
        field = meta.get_field(name)
        sets.append(f"{qn(field.column)} = %s")
        args.append(field.get_db_prep_save(value, connection))
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {where}"  # noqa: S608
    return sql, args + params


def _s3_delete_all(s3: BenchS3, doomed: list[dict[str, str]]) -> None:
    for start in range(0, len(doomed), 1000):
        reply = s3.client.delete_objects(
            Bucket=s3.bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
        )
        if reply.get("Errors"):
            raise RuntimeError(f"floor: S3 errors {reply['Errors'][:3]}")


def _list_versions(s3: BenchS3, plan: FloorPlan) -> list[dict[str, str]]:
    """The subject's object versions: "o/" listed once, or each order's prefix."""
    doomed = []
    paginator = s3.client.get_paginator("list_object_versions")
    prefixes = ["o/"] if plan.one_listing else [f"o/{t}/" for t in sorted(plan.tokens)]
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=s3.bucket, Prefix=prefix):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if v["Key"].split("/")[1] in plan.tokens:
                    doomed.append({"Key": v["Key"], "VersionId": v["VersionId"]})
    return doomed


def _floor(plan: FloorPlan, s3: BenchS3) -> dict[str, float]:
    """Files first (as the erasure does), then the rows in one transaction."""
    from django.db import connection, transaction

    started = time.perf_counter()
    doomed = _list_versions(s3, plan)
    listed = time.perf_counter()
    _s3_delete_all(s3, doomed)
    s3_done = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        for sql, params in plan.statements:
            cur.execute(sql, params)
    ended = time.perf_counter()
    return {
        "total": ended - started,
        "s3": s3_done - started,
        "s3_list": listed - started,
        "s3_delete": s3_done - listed,
        "db": ended - s3_done,
        "versions": len(doomed),
    }


def _ours(info: SubjectInfo) -> tuple[float, Any]:
    """erasure_start + erasure_run (run on commit, in this process), timed together."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from dsr.models import Channel, IdentityCheck, RequestType, Ticket, TicketStatus
    from dsr.services.erasure import erasure_start

    now = timezone.now()
    ticket = Ticket.objects.create(
        reference=f"DSR-E{uuid.uuid4().hex[:7].upper()}",
        type=RequestType.ERASURE,
        status=TicketStatus.VERIFIED,
        channel=Channel.ACCOUNT,
        user=User.objects.get(pk=info.user_id),
        email=info.email,
        received_at=now,
        verified_at=now,
        identity_check=IdentityCheck.LOGIN,
        calendar="IE",
        first_due=now.date(),
    )
    started = time.perf_counter()
    with transaction.atomic():
        erasure_start(ticket=ticket, actor=None)
    elapsed = time.perf_counter() - started  # the run happened on commit (eager task)
    ticket.refresh_from_db()
    if ticket.status != TicketStatus.FULFILLED:
        steps = list(ticket.erasure_steps.values_list("key", "status", "last_error"))
        raise RuntimeError(f"the erasure did not finish: {ticket.status} {steps}")
    return elapsed, ticket


def _step_seconds(ticket: Any) -> dict[str, float]:
    out = {}
    for step in ticket.erasure_steps.order_by("position"):
        if step.started_at and step.finished_at:
            out[step.key] = round((step.finished_at - step.started_at).total_seconds(), 3)
    return out


def _others_intact(s3: BenchS3, infos: list[SubjectInfo]) -> list[str]:
    from orders.models import Order

    keys = set(bucket_keys(s3.client, s3.bucket))
    problems = []
    for info in infos:
        missing = [k for k in info.other_file_keys if k not in keys]
        if missing:
            problems.append(f"other customer {info.other_user_id} lost {len(missing)} files")
        orders = Order.objects.filter(customer_id=info.other_user_id).exclude(instructions="")
        if not orders.exists():
            problems.append(f"other customer {info.other_user_id}'s orders were anonymised")
    return problems


def erasure_vs_floor_ratio(ctx: BenchContext) -> BenchResult:
    from django.core.files.storage import default_storage
    from django.test import override_settings

    from config.celery import app as celery_app
    from dsr.services.erasure import erasure_leftovers
    from dsr.services.erasure_steps import erasure_subject, plan

    # One bucket per subject, alike: S3 listings cost what the bucket holds (on moto
    # every listing walks the whole bucket), so neither run lists the other's files.
    s3_ours, s3_floor = bench_s3(versioned=True), bench_s3(versioned=True)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the run is enqueued on commit: in-process
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            log(
                f"seeding two heavy subjects on versioned buckets {s3_ours.bucket}, "
                f"{s3_floor.bucket}"
            )
            with use_storages(s3_floor.storages):
                floor_info = seed_heavy_subject(quick=ctx.quick, storage=default_storage)
            with use_storages(s3_ours.storages):
                ours_info = seed_heavy_subject(quick=ctx.quick, storage=default_storage)
                log(f"  seeded in {ours_info.seconds + floor_info.seconds:.1f}s")
                # Warm-up, as a worker would be: the floor's plan (its queries compiled
                # and checked), the erasure's plan of its subject (read-only), the email.
                floor_plan = _floor_plan(floor_info)
                plan(erasure_subject(_ticket_stub(ours_info)))
                _warm_templates()

                ours_s, ticket = _ours(ours_info)
                log(f"  erasure {ours_s:.2f}s")
                floor = _floor(floor_plan, s3_floor)
                log(
                    f"  floor {floor['total']:.2f}s (S3 {floor['s3']:.2f}s, SQL {floor['db']:.2f}s)"
                )
                left_ours = erasure_leftovers(user_id=ours_info.user_id, email=ours_info.email)
                problems = _others_intact(s3_ours, [ours_info])
            with use_storages(s3_floor.storages):
                left_floor = erasure_leftovers(user_id=floor_info.user_id, email=floor_info.email)
                problems += _others_intact(s3_floor, [floor_info])
    finally:
        celery_app.conf.task_always_eager = eager
        for s3 in (s3_ours, s3_floor):
            drop_bucket(s3.client, s3.bucket)
    if problems:
        raise RuntimeError("; ".join(problems))
    ratio = ours_s / floor["total"]
    receipt = ticket.outcome
    leftovers = sum(left_ours.values())
    return BenchResult(
        name=NAME,
        value=round(ratio, 3),
        unit="x",
        goal=GOAL,
        details={
            "erasure_s": round(ours_s, 2),
            "floor_s": round(floor["total"], 2),
            "floor_s3_s": round(floor["s3"], 2),
            "floor_sql_s": round(floor["db"], 2),
            "floor_s3_list_s": round(floor["s3_list"], 2),
            "floor_s3_delete_s": round(floor["s3_delete"], 2),
            "floor_versions_deleted": floor["versions"],
            "erasure_steps_s": _step_seconds(ticket),
            "receipt_totals": receipt["totals"],
            "files_deleted": receipt["files"],
            "file_versions_deleted": receipt["file_versions_deleted"],
            "kept_for_legal_duty": {k["records"]: k["rows"] for k in receipt["kept"]},
            "leftovers_after_erasure": left_ours,
            "leftovers_after_floor": left_floor,
            "subject": {
                "files": len(ours_info.file_keys),
                "file_mib": round(ours_info.file_bytes / 2**20, 1),
                "rows": ours_info.counts,
            },
            "s3_listing": "one listing of o/" if floor_plan.one_listing else "per order",
            "method": "erasure_start + erasure_run in this process vs raw SQL (same rows, "
            "same values) + S3 list_object_versions (the same listing choice) and "
            "delete_objects batches, on a second identical subject and bucket in the "
            "same run",
        },
        extra_checks=[
            Check(
                "leftovers_after_erasure (rows + objects, legal-duty rows excluded)",
                leftovers,
                "items",
                "<= 0",
            ),
        ],
    )


def _warm_templates() -> None:
    from django.template.loader import get_template

    for event in ("fulfilled", "received"):
        get_template(f"emails/dsr/{event}.txt")
        get_template(f"emails/dsr/{event}_subject.txt")


def _ticket_stub(info: SubjectInfo) -> Any:
    from accounts.models import User
    from dsr.models import Ticket

    return Ticket(user=User.objects.get(pk=info.user_id), email=info.email)
