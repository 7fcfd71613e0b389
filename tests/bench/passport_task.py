"""passport_task_vs_bare_ratio: the passport work as a Celery task end to end vs bare.

The task (images.tasks.photo_process on a passport order) reads the quarantined selfie
from storage, claims the photo with a conditional update, makes the passport outputs
(digital file, print sheet, watermarked preview), writes them under deterministic keys,
records the results and deletes the raw upload. "Bare" is the same passport_make call
on the same bytes in this process, with no storage, database or broker. The task runs
on a real worker (a solo worker thread on real Redis); the time is from enqueue to the
result being back, so broker latency counts too.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from tests.bench.common import BenchContext, BenchResult, log
from tests.bench.passport import portrait_fixture

GOAL = 1.3
ROUNDS, QUICK_ROUNDS = 12, 4
SPEC_KEY = "us_passport"


def _new_photo(data: bytes) -> int:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from images.models import Photo, PhotoStatus, ScanVerdict
    from orders.models import Order, OrderKind

    order = Order.objects.create(kind=OrderKind.PASSPORT, document=SPEC_KEY)
    name = default_storage.save(f"q/{order.storage_token}/{uuid.uuid4().hex}", ContentFile(data))
    photo = Photo.objects.create(
        order=order, upload=name, status=PhotoStatus.PROCESSING, scan=ScanVerdict.NOT_SCANNED
    )
    return int(photo.pk)


def _cleanup() -> None:
    from common.storage import storage_delete_everywhere
    from images.models import Photo, Result
    from orders.models import Order

    for result in Result.objects.all():
        storage_delete_everywhere(result.file.name or "")
    Result.objects.all().delete()
    Photo.objects.all().delete()
    Order.objects.all().delete()


def passport_task_vs_bare_ratio(ctx: BenchContext) -> BenchResult:
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from images import tasks
    from images.operations.passport import passport_make
    from images.passport_specs import DOCUMENT_SPECS

    data = portrait_fixture()
    spec = DOCUMENT_SPECS[SPEC_KEY]
    rounds = QUICK_ROUNDS if ctx.quick else ROUNDS
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    bare_s: list[float] = []
    task_s: list[float] = []
    outcomes: list[str] = []
    log(f"passport task: {rounds} rounds, real worker on queue {queue}")
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
        for n in range(rounds + 1):  # the first round of each is a warm-up
            started = time.perf_counter()
            passport_make(data, spec)
            bare = time.perf_counter() - started

            photo_id = _new_photo(data)
            started = time.perf_counter()
            outcome = tasks.photo_process.delay(photo_id).get(timeout=120, interval=0.005)
            task = time.perf_counter() - started
            if n:
                bare_s.append(bare)
                task_s.append(task)
                outcomes.append(str(outcome))
    _cleanup()
    if set(outcomes) != {"ready"}:
        raise RuntimeError(f"the task did not make the photo every time: {outcomes}")
    bare_med, task_med = statistics.median(bare_s), statistics.median(task_s)
    ratio = task_med / bare_med
    details: dict[str, Any] = {
        "rounds": rounds,
        "bare_ms_median": round(bare_med * 1000, 1),
        "task_ms_median": round(task_med * 1000, 1),
        "overhead_ms": round((task_med - bare_med) * 1000, 1),
        "bare": "passport_make: digital file, print sheet and watermarked preview",
        "task": "images.tasks.photo_process on a real worker: storage read, claim, "
        "passport_make, three storage writes, result rows, raw upload deleted",
    }
    return BenchResult(
        name="passport_task_vs_bare_ratio",
        value=round(ratio, 3),
        unit="x",
        goal=f"<= {GOAL}",
        details=details,
    )
