"""Public privacy data over the API: the policy and its versions (CON-5), the register (TRN-1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from consent.models import (
    LawfulBasis,
    PolicyStatus,
    PolicyVersion,
    ProcessingPurpose,
    Recipient,
    RecipientRole,
    SupervisoryAuthority,
    TransferSafeguard,
)

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/privacy/policy/"
VERSIONS = "/api/v1/privacy/policy/versions/"
REGISTER = "/api/v1/privacy/register/"


def published(number: int, *, days_ago: float = 10, **kwargs) -> PolicyVersion:
    when = timezone.now() - timedelta(days=days_ago)
    return PolicyVersion.objects.create(
        number=number,
        status=PolicyStatus.PUBLISHED,
        effective_at=when,
        published_at=when,
        summary=kwargs.pop("summary", f"Changes of version {number}"),
        **kwargs,
    )


def _error(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


def test_no_published_policy_is_404_with_the_error_shape(anon_api) -> None:
    PolicyVersion.objects.create(number=1, status=PolicyStatus.DRAFT, summary="Draft")
    response = anon_api.get(POLICY)
    assert response.status_code == 404 and _error(response) == "not_found"
    assert anon_api.get(VERSIONS).json()["results"] == []


def test_current_policy_is_the_one_in_force_as_the_page_shows_it_CON_5(anon_api) -> None:
    published(1, days_ago=400, body="Old words.")
    current = published(2, days_ago=3, body="First paragraph.\n\nSecond <b>bold</b> & more.")
    published(3, days_ago=-5, body="Not yet.")  # announced, not in force
    body = anon_api.get(POLICY).json()
    assert body["number"] == 2 and body["is_current"] is True
    assert body["summary"] == "Changes of version 2" and body["reduces_rights"] is False
    assert body["body"] == current.body
    assert body["body_html"] == (
        "<p>First paragraph.</p>\n\n<p>Second &lt;b&gt;bold&lt;/b&gt; &amp; more.</p>"
    )
    assert body["effective_at"].startswith(f"{current.effective_at:%Y-%m-%d}")


def test_version_history_newest_first_and_one_version_CON_5(anon_api) -> None:
    for n in (1, 2, 3):
        published(n, days_ago=10 - n)
    PolicyVersion.objects.create(number=4, status=PolicyStatus.DRAFT, summary="Draft")
    listed = anon_api.get(VERSIONS).json()["results"]
    assert [v["number"] for v in listed] == [3, 2, 1]
    assert [v["is_current"] for v in listed] == [True, False, False]
    assert "body" not in listed[0]
    one = anon_api.get(f"{VERSIONS}1/").json()
    assert one["number"] == 1 and one["is_current"] is False and "body_html" in one
    for missing in (f"{VERSIONS}4/", f"{VERSIONS}99/"):
        response = anon_api.get(missing)
        assert response.status_code == 404 and _error(response) == "not_found"
    assert anon_api.get(f"{VERSIONS}abc/").status_code == 404


def _rule(body: dict, after: str, label: str) -> dict:
    holding = next(h for h in body["holdings"] if h["model"] == label)
    return next(r for r in holding["retention"] if r["after"] == after)


def test_register_retention_follows_the_settings_the_engine_enforces_TRN_1(
    anon_api, settings
) -> None:
    settings.RETENTION_INTERVAL_MINUTES = 15
    before = anon_api.get(REGISTER).json()
    assert before["retention_sweep_minutes"] == 15 and before["server_log_days"] == 30
    original = _rule(before, "the order's last edit", "images.Photo")
    # The engine starts one sweep early so a file is gone *at the latest* at its limit.
    assert original["period_seconds"] == 72 * 3600 - 15 * 60
    assert original["latest_seconds"] == 72 * 3600 and original["latest"] == "72 hours"
    assert _rule(before, "delivery", "images.Result")["latest"] == "7 days"

    settings.ORIGINALS_RETENTION_HOURS = 24
    settings.RESULTS_RETENTION_DAYS = 3
    settings.REQUEST_LOG_RETENTION_DAYS = 14
    after = anon_api.get(REGISTER).json()
    assert _rule(after, "the order's last edit", "images.Photo")["latest"] == "24 hours"
    assert _rule(after, "delivery", "images.Result")["latest"] == "72 hours"  # 3 days
    assert after["server_log_days"] == 14
    log = next(h for h in after["holdings"] if h["model"] == "accounts.RequestLog")
    assert log["retention"][0]["text"] == "deleted 14 days after the request"


def test_register_legal_duty_and_erasure_TRN_1(anon_api, settings) -> None:
    settings.INVOICE_RETENTION_YEARS = 10
    invoices = next(
        h for h in anon_api.get(REGISTER).json()["holdings"] if h["model"] == "orders.Invoice"
    )
    assert invoices["erasure"].startswith("kept for tax law (invoices), reduced to")
    assert invoices["kept_until"] == "deleted 3653 days after issue"
    settings.INVOICE_RETENTION_YEARS = 7
    invoices = next(
        h for h in anon_api.get(REGISTER).json()["holdings"] if h["model"] == "orders.Invoice"
    )
    assert invoices["kept_until"] == "deleted 2558 days after issue"
    photos = next(
        h for h in anon_api.get(REGISTER).json()["holdings"] if h["model"] == "images.Photo"
    )
    assert photos["stored_files"] is True


def test_register_purposes_recipients_authority_cookies_rights_TRN_1_DSR_6(anon_api) -> None:
    purpose = ProcessingPurpose.objects.get(key="orders")
    purpose.lawful_basis = LawfulBasis.LEGITIMATE_INTEREST
    purpose.legitimate_interest = "Finishing work a customer started with us"
    purpose.save()
    cloud = Recipient.objects.create(
        name="Cloudy Storage Inc",
        address="500 Market Street, San Francisco",
        role=RecipientRole.PROCESSOR,
        service="Stores images",
        data_categories=["image"],
        country="US",
        transfer_safeguard=TransferSafeguard.SCC,
        safeguard_note="Module 2 clauses of 2021",
    )
    cloud.purposes.set(ProcessingPurpose.objects.filter(key="orders"))
    Recipient.objects.create(
        name="Retired",
        address="x",
        role=RecipientRole.OTHER,
        service="-",
        country="FR",
        active=False,
    )
    SupervisoryAuthority.objects.create(
        name="Data Protection Commission",
        address="21 Fitzwilliam Square South\nDublin 2",
        country="IE",
        is_lead=True,
    )
    body = anon_api.get(REGISTER).json()
    orders = next(p for p in body["purposes"] if p["key"] == "orders")
    assert orders["lawful_basis"] == "legitimate_interest"
    assert orders["legitimate_interest"] == "Finishing work a customer started with us"
    assert [r["name"] for r in body["recipients"]] == ["Cloudy Storage Inc"]
    recipient = body["recipients"][0]
    assert recipient["outside_eea"] is True and recipient["country"] == "US"
    assert recipient["transfer_safeguard"] == "scc"
    assert recipient["transfer_safeguard_label"] == "Standard contractual clauses"
    assert recipient["data_categories"] == ["Images"] and recipient["purposes"] == [orders["name"]]
    authority = body["supervisory_authorities"][0]
    assert authority["is_lead"] is True and authority["country_name"] == "Ireland"
    assert "sessionid" in {c["name"] for c in body["cookies"]["essential"]}
    assert {c["key"] for c in body["cookies"]["with_consent"]} == {"analytics", "advertising"}
    assert body["cookies"]["signals_honoured"] == ["Global Privacy Control", "Do Not Track"]
    rights = {r["key"] for r in body["rights"]}
    assert {"access", "erasure", "objection", "portability", "withdraw_consent"} <= rights
    assert {f["field"] for f in body["account_fields"]} >= {"email", "full_name"}


def test_register_query_count_does_not_grow_with_recipients(
    anon_api, django_assert_max_num_queries
) -> None:
    def add(n: int) -> None:
        recipient = Recipient.objects.create(
            name=f"R{n}", address="a", role=RecipientRole.PROCESSOR, service="s", country="IE"
        )
        recipient.purposes.set(ProcessingPurpose.objects.all()[:2])

    add(0)
    with django_assert_max_num_queries(20) as one:
        anon_api.get(REGISTER)
    baseline = len(one.captured_queries)
    for n in range(1, 8):
        add(n)
    with django_assert_max_num_queries(baseline):
        assert len(anon_api.get(REGISTER).json()["recipients"]) == 8


def test_public_endpoints_ignore_credentials_and_never_need_csrf(customer) -> None:
    published(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(POLICY).status_code == 200
    assert client.get(REGISTER).status_code == 200


def test_public_endpoints_are_read_only(anon_api) -> None:
    response = anon_api.post(REGISTER, {}, format="json")
    assert response.status_code == 405 and _error(response) == "method_not_allowed"


def test_anonymous_throttle_429_with_retry_after(settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "anon": "2/min",
        },
    }
    addr = "198.18.9.21"
    cache.delete(f"throttle_anon_ip:{addr}")  # shared cache: start from zero
    client = APIClient(REMOTE_ADDR=addr)
    statuses = [client.get(REGISTER).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get(VERSIONS)
    assert response.status_code == 429 and _error(response) == "throttled"
    assert int(response["Retry-After"]) > 0
