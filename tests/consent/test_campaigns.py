"""Campaigns: what every marketing email carries (CON-1), who gets it (CON-1, CON-2),
staff actions in the admin, and audiences built from site use (CON-6)."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts.models import AuditAction, AuditEvent
from consent.models import (
    Audience,
    AudienceMember,
    AudienceRule,
    CampaignSend,
    CampaignStatus,
    ConsentMethod,
)
from consent.services.audiences import audience_build
from consent.services.campaigns import (
    CampaignRefused,
    campaign_cancel,
    campaign_preview,
    campaign_progress,
    campaign_start,
    campaign_test_send,
)
from consent.services.ledger import consent_record
from consent.services.marketing import marketing_optout
from dsr.services.retention import retention_run_all
from orders.models import Order, OrderKind, OrderStatus
from tests.conftest import login_client
from tests.consent.marketing_helpers import SELLER_ADDRESS, campaign_make, subscriber_make
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SITE = "https://photos.example.org"


@pytest.fixture(autouse=True)
def _seller(settings: Any) -> None:
    settings.SELLER_ADDRESS = SELLER_ADDRESS
    settings.SELLER_NAME = "Clearframe Photo Ltd"
    settings.SITE_URL = SITE
    settings.MARKETING_FROM_EMAIL = "news@photos.example.org"


@pytest.fixture
def marketer(roles_present: None) -> Any:
    return UserFactory(email="mia@example.com", role=roles.MARKETING)


def _run(callbacks: Any) -> None:
    for callback in callbacks:
        callback()


def _start(campaign: Any, marketer: Any, capture: Any) -> int:
    with capture(execute=True):
        return campaign_start(campaign=campaign, actor=marketer)


def _parsed(message: Any) -> email.message.EmailMessage:
    return email.message_from_bytes(message.raw, policy=email.policy.default)


# --- What every message carries (CON-1) ---------------------------------------------------------


def test_every_message_is_marked_identified_and_unsubscribable_CON_1(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subs = [subscriber_make(f"r{i}@example.com") for i in range(3)]
    campaign = campaign_make(body="Half price on passport photos.\n\nUntil Sunday.")
    _start(campaign, marketer, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3
    for sub in subs:
        message = next(m for m in mail.outbox if m.to == [sub.email])
        parsed = _parsed(message)
        assert parsed["To"] == sub.email and parsed["Subject"] == "Spring offer"
        assert (
            "Clearframe Photo Ltd" in parsed["From"] and "news@photos.example.org" in parsed["From"]
        )
        # RFC 8058 one-click headers, an https URL on our site, per recipient.
        unsubscribe = parsed["List-Unsubscribe"]
        assert unsubscribe.startswith(f"<{SITE}/consent/unsubscribe/") and unsubscribe.endswith(
            "/>"
        )
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # Deterministic Message-ID per (campaign, subscriber).
        assert parsed["Message-ID"] == f"<campaign-{campaign.pk}.{sub.pk}@photos.example.org>"
        text = parsed.get_body(preferencelist=("plain",)).get_content()
        assert "advertisement" in text.lower()
        for line in SELLER_ADDRESS.splitlines():
            assert line in text
        # The unsubscribe link is at the bottom, and is the header's link.
        last_lines = [line for line in text.strip().splitlines() if line.strip()][-2:]
        assert last_lines[-1] == unsubscribe[1:-1]
        assert "Half price on passport photos." in text and "Until Sunday." in text
        html = parsed.get_body(preferencelist=("html",)).get_content()
        assert unsubscribe[1:-1] in html and "advertisement" in html.lower()


def test_footer_link_unsubscribes_without_login_CON_1(
    marketer: Any, client: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    sub = subscriber_make("foot@example.com")
    _start(campaign_make(), marketer, django_capture_on_commit_callbacks)
    url = _parsed(mail.outbox[0])["List-Unsubscribe"][1:-1].removeprefix(SITE)
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    from consent.selectors import consent_allows

    assert not consent_allows(purpose="marketing_email", email=sub.email)


def test_non_ascii_campaign_is_encoded_and_reads_back(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("u@example.com")
    long_line = "Schöne Grüße, " + "sehr " * 300
    campaign = campaign_make(subject="Frühling: 20 % Rabatt", body=f"Hallo!\n\n{long_line}")
    _start(campaign, marketer, django_capture_on_commit_callbacks)
    parsed = _parsed(mail.outbox[0])
    assert parsed["Subject"] == "Frühling: 20 % Rabatt"
    assert max(len(line) for line in mail.outbox[0].raw.split(b"\r\n")) <= 998
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert long_line.strip() in text
    assert text.strip().splitlines()[-1] == parsed["List-Unsubscribe"][1:-1]


def test_preview_is_exactly_what_is_sent(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("first@example.com")
    campaign = campaign_make()
    preview = campaign_preview(campaign=campaign)
    _start(campaign, marketer, django_capture_on_commit_callbacks)
    sent = _parsed(mail.outbox[0])
    assert preview.recipient == "first@example.com"
    preview_headers = dict(preview.headers)
    for name in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe-Post", "List-Id"):
        assert preview_headers[name] == sent[name]
    text = sent.get_body(preferencelist=("plain",)).get_content()
    # Same message but for the signing timestamp inside the token.
    assert (
        preview.text.rsplit("/consent/unsubscribe/", 1)[0]
        == text.rsplit("/consent/unsubscribe/", 1)[0]
    )


# --- Who gets it (CON-1, CON-2) -----------------------------------------------------------------


def test_consent_is_checked_at_send_time_not_at_start_CON_1_CON_2(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    keep = subscriber_make("keep@example.com")
    leave = subscriber_make("leave@example.com")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert campaign_start(campaign=campaign, actor=marketer) == 2
    # Withdrawn after the start, before the batch runs: skipped, never mailed.
    marketing_optout(email=leave.email, method=ConsentMethod.EMAIL_LINK)
    _run(callbacks)
    assert [m.to for m in mail.outbox] == [[keep.email]]
    skipped = CampaignSend.objects.get(subscriber=leave)
    assert skipped.status == "skipped" and "consent" in skipped.last_error
    assert campaign_progress(campaign=campaign) == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "skipped": 1,
        "failed": 0,
    }
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and campaign.finished_at


def test_unconfirmed_and_withdrawn_subscribers_get_nothing_CON_1(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("yes@example.com")
    subscriber_make("never-consented@example.com", consent=False)
    withdrawn = subscriber_make("withdrawn@example.com")
    consent_record(
        purpose="marketing_email", granted=False, method=ConsentMethod.FORM, email=withdrawn.email
    )
    _start(campaign_make(), marketer, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["yes@example.com"]]
    assert CampaignSend.objects.count() == 1  # no send record for people without consent


def test_start_refuses_without_postal_address_CON_1(
    marketer: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SELLER_ADDRESS = "  "
    subscriber_make("a@example.com")
    campaign = campaign_make()
    with pytest.raises(CampaignRefused, match="postal address"):
        _start(campaign, marketer, django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not CampaignSend.objects.exists()
    assert not mail.outbox


def test_start_refuses_when_nobody_consents_CON_1(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("no@example.com", consent=False)
    campaign = campaign_make()
    with pytest.raises(CampaignRefused, match="Nobody would receive"):
        _start(campaign, marketer, django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not mail.outbox


def test_start_needs_the_send_permission(customer: Any, support: Any) -> None:
    subscriber_make("a@example.com")
    for who in (customer, support):
        with pytest.raises(PermissionDenied):
            campaign_start(campaign=campaign_make(), actor=who)


def test_start_is_audited_and_only_once(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("a@example.com")
    campaign = campaign_make()
    _start(campaign, marketer, django_capture_on_commit_callbacks)
    assert (
        AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_STARTED, actor=marketer).count() == 1
    )
    with pytest.raises(CampaignRefused, match="only a draft"):
        _start(campaign, marketer, django_capture_on_commit_callbacks)
    assert CampaignSend.objects.count() == 1 and len(mail.outbox) == 1


def test_cancel_skips_what_is_pending_and_is_audited(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    for i in range(3):
        subscriber_make(f"c{i}@example.com")
    campaign = campaign_make()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_start(campaign=campaign, actor=marketer)
    assert campaign_cancel(campaign=campaign, actor=marketer) == 3
    _run(callbacks)
    assert not mail.outbox
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert campaign_progress(campaign=campaign)["skipped"] == 3
    assert AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_CANCELLED).exists()


def test_test_send_goes_to_staff_only_marked_and_audited(marketer: Any) -> None:
    subscriber_make("subscriber@example.com")
    campaign = campaign_make()
    assert campaign_test_send(campaign=campaign, actor=marketer) == marketer.email
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [marketer.email]
    parsed = _parsed(mail.outbox[0])
    assert parsed["Subject"].startswith("[TEST]") and parsed["X-Campaign-Test"] == "yes"
    assert "TEST SEND" in parsed.get_body(preferencelist=("plain",)).get_content()
    assert AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_TEST_SENT, actor=marketer).exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not CampaignSend.objects.exists()


# --- Audiences (CON-6) --------------------------------------------------------------------------


def _paid(user: Any, kind: str, when: Any) -> Order:
    return Order.objects.create(
        customer=user, kind=kind, status=OrderStatus.PAID, paid_at=when, amount_minor=700
    )


def test_audience_is_built_from_paid_orders_and_audited_CON_6(marketer: Any, settings: Any) -> None:
    now = timezone.now()
    buyer: Any = UserFactory(email="buyer@example.com")
    old_buyer: Any = UserFactory(email="old@example.com")
    retoucher_customer: Any = UserFactory(email="retouch@example.com")
    unpaid: Any = UserFactory(email="unpaid@example.com")
    _paid(buyer, OrderKind.PASSPORT, now - timedelta(days=40))
    _paid(buyer, OrderKind.PASSPORT, now - timedelta(days=3))
    _paid(
        old_buyer,
        OrderKind.PASSPORT,
        now - timedelta(days=settings.MARKETING_AUDIENCE_RETENTION_DAYS + 1),
    )
    _paid(retoucher_customer, OrderKind.RETOUCH, now - timedelta(days=1))
    Order.objects.create(customer=unpaid, kind=OrderKind.PASSPORT, status=OrderStatus.DRAFT)
    audience = Audience.objects.create(name="Passport buyers", rule=AudienceRule.PASSPORT_CUSTOMERS)
    assert audience_build(audience=audience, actor=marketer) == 1
    member = AudienceMember.objects.get(audience=audience)
    assert member.user == buyer
    assert abs((member.activity_at - (now - timedelta(days=3))).total_seconds()) < 1
    assert AuditEvent.objects.filter(action=AuditAction.AUDIENCE_BUILT, actor=marketer).exists()


def test_audience_members_age_out_by_the_registry_rule_CON_6(marketer: Any, settings: Any) -> None:
    audience = Audience.objects.create(name="Old", rule=AudienceRule.PASSPORT_CUSTOMERS)
    fresh: Any = UserFactory()
    stale: Any = UserFactory()
    limit = settings.MARKETING_AUDIENCE_RETENTION_DAYS
    assert limit <= 540
    AudienceMember.objects.create(
        audience=audience, user=fresh, activity_at=timezone.now() - timedelta(days=limit - 1)
    )
    AudienceMember.objects.create(
        audience=audience, user=stale, activity_at=timezone.now() - timedelta(days=limit + 1)
    )
    retention_run_all(force=True)
    assert list(AudienceMember.objects.values_list("user", flat=True)) == [fresh.pk]
    # A shorter setting applies at once: the rule reads it at run time.
    settings.MARKETING_AUDIENCE_RETENTION_DAYS = limit - 100
    retention_run_all(force=True)
    assert not AudienceMember.objects.exists()


def test_campaign_to_an_audience_reaches_consenting_members_only_CON_1_CON_6(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    member_sub: Any = UserFactory(email="member@example.com")
    member_nosub: Any = UserFactory(email="member-nosub@example.com")
    subscriber_make("outsider@example.com")
    subscriber_make(member_sub.email)  # subscribed by address, anonymously
    audience = Audience.objects.create(name="A", rule=AudienceRule.PASSPORT_CUSTOMERS)
    for user in (member_sub, member_nosub):
        AudienceMember.objects.create(audience=audience, user=user, activity_at=timezone.now())
    _start(campaign_make(audience=audience), marketer, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [[member_sub.email]]


# --- Admin --------------------------------------------------------------------------------------


def test_admin_preview_test_start_progress_and_cancel(
    marketer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("adm@example.com")
    client = login_client(marketer, verified=True)
    add = client.post(
        reverse("admin:consent_campaign_add"),
        {"subject": "Autumn", "body": "Autumn offer.", "audience": ""},
    )
    assert add.status_code == 302
    from consent.models import Campaign

    campaign = Campaign.objects.get(subject="Autumn")
    assert campaign.created_by == marketer
    change = client.get(reverse("admin:consent_campaign_change", args=[campaign.pk]))
    assert change.status_code == 200 and b'id="recipients-now">1<' in change.content

    preview = client.get(reverse("admin:consent_campaign_preview", args=[campaign.pk]))
    body = preview.content.decode()
    assert (
        preview.status_code == 200 and "List-Unsubscribe-Post" in body and "12 Harbour Road" in body
    )
    html = client.get(reverse("admin:consent_campaign_preview_html", args=[campaign.pk]))
    assert html.status_code == 200 and "sandbox" in html["Content-Security-Policy"]

    assert client.get(reverse("admin:consent_campaign_test", args=[campaign.pk])).status_code == 405
    client.post(reverse("admin:consent_campaign_test", args=[campaign.pk]))
    assert mail.outbox[-1].to == [marketer.email]

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("admin:consent_campaign_start", args=[campaign.pk]))
    assert started.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    change = client.get(reverse("admin:consent_campaign_change", args=[campaign.pk]))
    assert b'id="progress-sent">1<' in change.content
    assert [m.to for m in mail.outbox][-1] == ["adm@example.com"]


def test_admin_start_refusal_is_shown_not_a_500(marketer: Any, settings: Any) -> None:
    settings.SELLER_ADDRESS = ""
    subscriber_make("x@example.com")
    campaign = campaign_make()
    client = login_client(marketer, verified=True)
    response = client.post(reverse("admin:consent_campaign_start", args=[campaign.pk]), follow=True)
    assert response.status_code == 200 and b"SELLER_ADDRESS" in response.content
    preview = client.get(reverse("admin:consent_campaign_preview", args=[campaign.pk]))
    assert preview.status_code == 200 and b"SELLER_ADDRESS" in preview.content


def test_staff_without_send_permission_cannot_start(support: Any) -> None:
    subscriber_make("x@example.com")
    campaign = campaign_make()
    client = login_client(support, verified=True)
    response = client.post(reverse("admin:consent_campaign_start", args=[campaign.pk]))
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
