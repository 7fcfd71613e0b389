"""The generated privacy page (TRN-1, DSR-6) and the policy version history (CON-5)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import (
    ConsentPurpose,
    LawfulBasis,
    PolicyStatus,
    PolicyVersion,
    ProcessingPurpose,
    Recipient,
    RecipientRole,
    SupervisoryAuthority,
    TransferSafeguard,
)
from consent.services.policy import policy_notice_cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_notice_cache():
    policy_notice_cache_clear()
    yield
    policy_notice_cache_clear()


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


def page(client) -> str:
    response = client.get("/privacy/")
    assert response.status_code == 200
    return response.content.decode()


def text_of(html: str) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'")


def test_last_modified_is_at_the_top_and_links_the_history_CON_5(client) -> None:
    published(1, days_ago=400)
    current = published(2, days_ago=3)
    # Published for a future date: announced, but not yet the policy in force.
    future = published(3, days_ago=-5)
    html = page(client)
    top = html.index("Last modified")
    assert top < html.index("<h2")
    assert f'Last modified: <time datetime="{current.effective_at.isoformat()}' in html
    assert f"{current.effective_at:%-d %B %Y}" in html[top : top + 200]
    assert f"{future.effective_at:%-d %B %Y}" not in html[top : top + 200]
    assert 'href="/consent/policy/versions/"' in html[top : top + 400]


def test_page_without_any_version_says_so(client) -> None:
    html = page(client)
    assert "Last modified: no version of this policy has been published yet" in html


def test_current_prose_is_shown_as_escaped_paragraphs_CON_5(client) -> None:
    published(1, body="Old words nobody should see.")
    published(
        2,
        body="First paragraph.\n\nSecond <script>alert(1)</script> paragraph & more.",
        days_ago=1,
    )
    html = page(client)
    assert "<p>First paragraph.</p>" in html
    assert "<p>Second &lt;script&gt;alert(1)&lt;/script&gt; paragraph &amp; more.</p>" in html
    assert "<script>alert(1)" not in html
    assert "Old words" not in html


def test_retention_follows_the_settings_the_engine_enforces_TRN_1(client, settings) -> None:
    settings.RETENTION_INTERVAL_MINUTES = 15
    before = text_of(page(client))
    assert "gone at the latest 72 hours after the order's last edit" in before
    assert "gone at the latest 7 days after delivery" in before
    assert "deleted after 30 days" in before

    settings.ORIGINALS_RETENTION_HOURS = 24
    settings.RESULTS_RETENTION_DAYS = 3
    settings.REQUEST_LOG_RETENTION_DAYS = 14
    after = text_of(page(client))
    assert "gone at the latest 24 hours after the order's last edit" in after
    assert "gone at the latest 72 hours after delivery" in after  # 3 days, said in hours
    assert "deleted after 14 days" in after
    assert "Deleted 14 days after the request" in after  # the registry rule itself
    assert "72 hours after the order's last edit" not in after
    assert "deleted after 30 days" not in after


def test_no_retention_number_is_written_into_the_template() -> None:
    """TRN-1: every period on the page comes from the registry or settings."""
    from pathlib import Path

    from django.conf import settings as django_settings

    template = Path(django_settings.BASE_DIR, "templates", "privacy.html").read_text()
    assert not re.search(r"\b\d+\s*(day|hour|minute|month|year)s?\b", template)


def test_purposes_show_basis_and_stated_interest_and_staff_edits_TRN_1(client) -> None:
    html = text_of(page(client))
    assert "Keep accounts and the service secure" in html
    assert "Our legitimate interest: Protecting customers' accounts" in html
    assert "Legal obligation" in html and "Contract" in html and "Consent" in html

    purpose = ProcessingPurpose.objects.get(key="orders")
    purpose.name = "Do the retouching you ordered"
    purpose.lawful_basis = LawfulBasis.LEGITIMATE_INTEREST
    purpose.legitimate_interest = "Finishing work a customer started with us"
    purpose.save()
    html = text_of(page(client))
    assert "Do the retouching you ordered" in html
    assert "Our legitimate interest: Finishing work a customer started with us" in html


def test_recipients_with_transfers_outside_the_eea_TRN_1(client) -> None:
    mail = Recipient.objects.create(
        name="Mailwell Ltd",
        address="1 Harbour Road\nDublin",
        role=RecipientRole.PROCESSOR,
        service="Sends our emails",
        data_categories=["contact"],
        country="IE",
    )
    mail.purposes.set(ProcessingPurpose.objects.filter(key="communication"))
    Recipient.objects.create(
        name="Cloudy Storage Inc",
        address="500 Market Street, San Francisco",
        role=RecipientRole.PROCESSOR,
        service="Stores images",
        data_categories=["image"],
        country="US",
        transfer_safeguard=TransferSafeguard.SCC,
        safeguard_note="Module 2 clauses of 2021",
    )
    Recipient.objects.create(
        name="Retired Partner",
        address="Nowhere",
        role=RecipientRole.OTHER,
        service="-",
        country="FR",
        active=False,
    )
    html = page(client)
    table = html[html.index('id="recipient-list"') : html.index('id="cookies"')]
    rows = table.split("<tr>")
    ie = next(r for r in rows if "Mailwell Ltd" in r)
    us = next(r for r in rows if "Cloudy Storage Inc" in r)
    assert "1 Harbour Road<br>Dublin" in ie and "Contact details" in ie and "Ireland" in ie
    assert "Tell account holders about their account" in ie
    assert "outside the EEA" not in ie
    assert "Transfer outside the EEA" in us and "Standard contractual clauses" in us
    assert "Module 2 clauses of 2021" in us and "Images" in us
    assert "Retired Partner" not in html


def test_supervisory_authority_contact_details_DSR_6(client) -> None:
    html = text_of(page(client))
    assert "You may complain to a data protection supervisory authority" in html
    assert "European Data Protection Board lists them" in html  # none configured yet
    SupervisoryAuthority.objects.create(
        name="Data Protection Commission",
        address="21 Fitzwilliam Square South\nDublin 2",
        website="https://www.dataprotection.ie",
        email="info@example.ie",
        phone="+353 1 765 0100",
        country="IE",
        is_lead=True,
    )
    html = page(client)
    complaints = text_of(html[html.index('id="complaints"') :])
    assert "Data Protection Commission (our lead supervisory authority)" in complaints
    assert "21 Fitzwilliam Square South Dublin 2" in complaints
    assert "info@example.ie" in complaints and "+353 1 765 0100" in complaints
    assert "European Data Protection Board" not in complaints


def test_cookies_section_lists_essential_and_consented_cookies(client, settings) -> None:
    ConsentPurpose.objects.filter(key="analytics").update(wording="Count visits, first-party.")
    html = page(client)
    cookies = html[html.index('id="cookies"') : html.index('id="rights"')]
    for name in settings.ESSENTIAL_COOKIES:
        assert f"<code>{name}</code>" in cookies
    assert "cf_policy_seen" in cookies
    assert "Count visits, first-party." in cookies
    assert "Do Not Track" in cookies and "Global Privacy Control" in cookies
    assert "before you consent" in cookies
    assert 'href="/consent/cookies/"' in cookies


def test_rights_include_objection_and_withdrawal(client) -> None:
    rights = text_of(page(client).split('id="rights"')[1].split('id="complaints"')[0])
    assert "objection to direct marketing is always honoured" in rights
    assert "Withdraw any consent at any time" in rights


def test_deletion_per_entry_with_legal_duty_and_files_TRN_1(client, settings) -> None:
    settings.INVOICE_RETENTION_YEARS = 10
    html = page(client)
    erasure = text_of(html[html.index('id="erasure"') : html.index('id="recipients"')])
    assert "Kept for tax law (invoices), reduced to" in erasure
    assert "then deleted 3653 days after issue" in erasure
    assert "Stored files are deleted with every stored version" in erasure
    settings.INVOICE_RETENTION_YEARS = 7
    erasure = text_of(page(client))
    assert "then deleted 2558 days after issue" in erasure


def test_privacy_page_is_a_handful_of_queries(client, django_assert_max_num_queries) -> None:
    published(1, body="Words.")
    for n in range(5):
        recipient = Recipient.objects.create(
            name=f"Processor {n}",
            address="Somewhere",
            role=RecipientRole.PROCESSOR,
            service="Hosting",
            data_categories=["network"],
            country="DE",
        )
        recipient.purposes.set(ProcessingPurpose.objects.all()[:3])
    SupervisoryAuthority.objects.create(name="DPC", address="Dublin", country="IE")
    client.get("/privacy/")  # warm the notice cache as any visitor would
    with django_assert_max_num_queries(7):
        html = page(client)
    assert html.count("Processor ") >= 5


def test_version_history_and_one_version_CON_5(client) -> None:
    published(1, days_ago=100, summary="First version.")
    two = published(
        2, days_ago=5, summary="Longer retention of invoices.", reduces_rights=True, body="Text 2"
    )
    PolicyVersion.objects.create(number=3, summary="A draft, never shown.")
    listing = client.get("/consent/policy/versions/").content.decode()
    assert "First version." in listing and "Longer retention of invoices." in listing
    assert "A draft" not in listing
    assert 'href="/consent/policy/versions/2/"' in listing
    detail = client.get("/consent/policy/versions/2/")
    assert detail.status_code == 200
    body = text_of(detail.content.decode())
    assert f"{two.effective_at:%-d %B %Y}" in body
    assert "Longer retention of invoices." in body
    assert "Reduces users' rights Yes" in body
    assert "Text 2" in body and "(the version in force)" in body
    assert client.get("/consent/policy/versions/3/").status_code == 404  # a draft
    assert client.get("/consent/policy/versions/99/").status_code == 404
