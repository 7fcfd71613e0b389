"""Newsletter: double opt-in (CON-3), unsubscribe and the one opt-out path (CON-1, CON-2)."""

from __future__ import annotations

import re
import time
import types
from typing import Any

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from common.http import RequestMeta
from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    Subscriber,
    SubscriberStatus,
    subject_key,
)
from consent.selectors import consent_allows
from consent.services.ledger import consent_record
from consent.services.marketing import (
    marketing_optout,
    marketing_status,
    marketing_subscribe_user,
)
from consent.tokens import confirmation_token, unsubscribe_token
from tests.conftest import login_client
from tests.consent.marketing_helpers import subscriber_make
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://photos.example.org"
    settings.ALLOWED_HOSTS = ["testserver", "photos.example.org"]


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move django.core.signing's clock forward (expiry is checked against it)."""
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: time.time() + seconds))


def _subscribe(client: Client, address: str, **extra: Any) -> Any:
    return client.post(reverse("consent:newsletter"), {"email": address}, **extra)


def _link(body: str, fragment: str) -> str:
    match = re.search(r"https://\S*" + re.escape(fragment) + r"\S*", body)
    assert match, body
    return match.group(0).removeprefix("https://photos.example.org")


# --- Subscribing ------------------------------------------------------------------------------


def test_newsletter_page_shows_the_purposes_exact_wording_CON_3(client: Client) -> None:
    purpose = ConsentPurpose.objects.get(key="marketing_email")
    purpose.wording = "Staff's own words: send me offers, at most twice a month."
    purpose.save()
    response = client.get(reverse("consent:newsletter"))
    assert response.status_code == 200
    assert escape(purpose.wording) in response.content.decode()


def test_double_opt_in_records_evidence_of_request_and_click_CON_3(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    shown = ConsentPurpose.objects.get(key="marketing_email").wording
    with django_capture_on_commit_callbacks(execute=True):
        response = _subscribe(client, "Dana@Example.com")
    assert response.status_code == 200 and b"Check your email" in response.content
    sub = Subscriber.objects.get(email="dana@example.com")
    assert sub.status == SubscriberStatus.PENDING
    assert not consent_allows(purpose="marketing_email", email="dana@example.com")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    # Transactional: it asks, it does not advertise.
    assert message.to == ["dana@example.com"] and "advertisement" not in message.body.lower()
    assert "List-Unsubscribe" not in message.extra_headers
    confirm = _link(message.body, "/consent/newsletter/confirm/")

    # Staff reword the purpose before the click: the evidence keeps what was shown.
    ConsentPurpose.objects.filter(key="marketing_email").update(wording="Changed later.")
    page = client.get(confirm)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and shown in page.content.decode()
    sub.refresh_from_db()
    assert sub.status == SubscriberStatus.PENDING and not ConsentEvent.objects.exists()

    done = client.post(confirm, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.50")
    assert done.status_code == 200 and b"You are subscribed" in done.content
    event = ConsentEvent.objects.get()
    assert event.granted and event.method == ConsentMethod.EMAIL_LINK
    assert event.subject == subject_key(email="dana@example.com")
    assert event.wording.text == shown
    assert event.ip_address == "203.0.113.50" and event.user_agent == UA
    sub.refresh_from_db()
    assert sub.status == SubscriberStatus.CONFIRMED and sub.confirmed_at
    assert consent_allows(purpose="marketing_email", email="dana@example.com")

    # Replaying the confirmation is harmless: no second event, a calm page.
    again = client.post(confirm)
    assert again.status_code == 200 and b"Already confirmed" in again.content
    assert ConsentEvent.objects.count() == 1


def test_logged_in_user_with_verified_address_is_subscribed_at_once_CON_3(customer: Any) -> None:
    client = login_client(customer)
    response = _subscribe(client, customer.email, HTTP_USER_AGENT=UA)
    assert response.status_code == 302
    assert not mail.outbox
    event = ConsentEvent.objects.get()
    assert event.method == ConsentMethod.FORM and event.user == customer
    assert event.subject == subject_key(user_id=customer.pk) and event.user_agent == UA
    assert marketing_status(user=customer).subscribed


def test_logged_in_user_subscribing_another_address_gets_a_confirmation(
    customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _subscribe(login_client(customer), "other-address@example.com")
    assert len(mail.outbox) == 1 and not ConsentEvent.objects.exists()


def test_unverified_account_address_needs_the_email_link(
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = UserFactory(email="fresh@example.com", email_verified_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        _subscribe(login_client(user), user.email)
    assert len(mail.outbox) == 1 and not ConsentEvent.objects.exists()


def test_response_never_reveals_whether_an_address_is_subscribed(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_make("known@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        known = _subscribe(client, "known@example.com")
        unknown = _subscribe(client, "unknown@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub(b"", known.content) == strip.sub(b"", unknown.content)
    # The subscribed address gets nothing (no email bombing of subscribers either).
    assert [m.to for m in mail.outbox] == [["unknown@example.com"]]


def test_confirmation_emails_are_throttled_per_address(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            response = _subscribe(client, "flood@example.com")
            assert response.status_code == 200
    assert len(mail.outbox) == 1


def test_confirmation_emails_are_capped_per_client_address(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MARKETING_CONFIRM_PER_IP_HOUR = 3
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(6):
            _subscribe(client, f"victim{n}@example.com", REMOTE_ADDR="198.51.100.99")
    assert len(mail.outbox) == 3


def test_invalid_email_is_a_400_with_the_form(client: Client) -> None:
    response = _subscribe(client, "not an address")
    assert response.status_code == 400 and not Subscriber.objects.exists()


# --- Bad confirmation links ---------------------------------------------------------------------


def _pending(address: str = "pat@example.com") -> Subscriber:
    from consent.services.ledger import consent_text_get

    return Subscriber.objects.create(
        email=address,
        consent_subject=subject_key(email=address),
        wording=consent_text_get(text="Shown then."),
    )


@pytest.mark.parametrize("how", ["forged", "altered", "other_salt"])
def test_forged_or_altered_confirmation_changes_nothing(client: Client, how: str) -> None:
    sub = _pending()
    token = confirmation_token(sub)
    if how == "forged":
        token = signing.TimestampSigner(salt="x", key="not-our-key").sign(f"{sub.pk}.abc.1")
    elif how == "altered":
        token = token.replace(f"{sub.pk}.", f"{sub.pk + 1}.", 1)
    else:  # an unsubscribe token must not work as a confirmation
        token = unsubscribe_token(subscriber_id=sub.pk, email=sub.email)
    url = reverse("consent:newsletter_confirm", args=[token])
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 400
        assert b"not valid" in response.content
    sub.refresh_from_db()
    assert sub.status == SubscriberStatus.PENDING and not ConsentEvent.objects.exists()


def test_expired_confirmation_changes_nothing(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _pending()
    url = reverse("consent:newsletter_confirm", args=[confirmation_token(sub)])
    _later(monkeypatch, settings.MARKETING_CONFIRM_DAYS * 86400 + 60)
    response = client.post(url)
    assert response.status_code == 400 and b"expired" in response.content
    assert not ConsentEvent.objects.exists()


def test_old_confirmation_link_cannot_resubscribe_after_unsubscribing_CON_2(
    client: Client,
) -> None:
    sub = _pending()
    url = reverse("consent:newsletter_confirm", args=[confirmation_token(sub)])
    assert client.post(url).status_code == 200
    marketing_optout(email=sub.email, method=ConsentMethod.EMAIL_LINK)
    response = client.post(url)
    assert response.status_code == 400 and b"no longer valid" in response.content
    assert not consent_allows(purpose="marketing_email", email=sub.email)


# --- Unsubscribing ------------------------------------------------------------------------------


def _unsubscribe_url(sub: Subscriber) -> str:
    return reverse(
        "consent:unsubscribe", args=[unsubscribe_token(subscriber_id=sub.pk, email=sub.email)]
    )


def test_unsubscribe_get_shows_a_button_and_changes_nothing_CON_1(client: Client) -> None:
    sub = subscriber_make("una@example.com")
    response = client.get(_unsubscribe_url(sub))
    assert response.status_code == 200 and b'id="unsubscribe-form"' in response.content
    assert consent_allows(purpose="marketing_email", email=sub.email)


def test_unsubscribe_button_works_without_login_at_once_CON_1_CON_2() -> None:
    sub = subscriber_make("una@example.com")
    client = Client(enforce_csrf_checks=True)
    page = client.get(_unsubscribe_url(sub))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token
    response = client.post(_unsubscribe_url(sub), {"csrfmiddlewaretoken": token.group(1).decode()})
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    assert not consent_allows(purpose="marketing_email", email=sub.email)
    sub.refresh_from_db()
    assert sub.status == SubscriberStatus.UNSUBSCRIBED and sub.unsubscribed_at
    event = ConsentEvent.objects.filter(granted=False).get()
    assert event.method == ConsentMethod.EMAIL_LINK and event.note == "unsubscribe link"


def test_rfc8058_one_click_post_without_csrf_or_login_CON_1() -> None:
    sub = subscriber_make("oc@example.com")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        _unsubscribe_url(sub),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200  # no redirect, per RFC 8058
    assert response.content.strip() == b"Unsubscribed."
    assert not consent_allows(purpose="marketing_email", email=sub.email)
    assert ConsentEvent.objects.get(granted=False).note == "one-click unsubscribe (RFC 8058)"
    # Repeating it is harmless.
    again = client.post(
        _unsubscribe_url(sub),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert again.status_code == 200 and ConsentEvent.objects.filter(granted=False).count() == 1


@pytest.mark.parametrize("how", ["forged", "altered", "other_salt", "wrong_address"])
def test_bad_unsubscribe_links_change_nothing_CON_1(client: Client, how: str) -> None:
    sub = subscriber_make("keep@example.com")
    token = unsubscribe_token(subscriber_id=sub.pk, email=sub.email)
    if how == "forged":
        token = signing.TimestampSigner(salt="consent.newsletter-unsubscribe", key="guess").sign(
            f"{sub.pk}.000000000000"
        )
    elif how == "altered":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif how == "other_salt":
        token = confirmation_token(sub)
    else:
        token = unsubscribe_token(subscriber_id=sub.pk, email="someone-else@example.com")
    url = reverse("consent:unsubscribe", args=[token])
    assert client.get(url).status_code == 400
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400 and b"not valid" in response.content
    assert consent_allows(purpose="marketing_email", email=sub.email)
    assert not ConsentEvent.objects.filter(granted=False).exists()


def test_unsubscribe_link_works_for_the_promised_days_then_expires_CON_1(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = subscriber_make("late@example.com")
    url = _unsubscribe_url(sub)
    assert settings.UNSUBSCRIBE_LINK_DAYS >= 60
    _later(monkeypatch, (settings.UNSUBSCRIBE_LINK_DAYS + 1) * 86400)
    expired = client.post(url)
    assert expired.status_code == 400 and b"expired" in expired.content
    assert consent_allows(purpose="marketing_email", email=sub.email)
    _later(monkeypatch, (settings.UNSUBSCRIBE_LINK_DAYS - 1) * 86400)
    assert client.post(url).status_code == 200
    assert not consent_allows(purpose="marketing_email", email=sub.email)


# --- The one opt-out path -------------------------------------------------------------------------


def test_optout_withdraws_every_marketing_purpose_for_every_subject_CON_2(customer: Any) -> None:
    ConsentPurpose.objects.create(
        key="partner_offers",
        name="Partner offers",
        kind="marketing",
        wording="Partners.",
        is_marketing=True,
    )
    meta = RequestMeta(ip_address="192.0.2.1", user_agent=UA)
    marketing_subscribe_user(user=customer, meta=meta)
    consent_record(purpose="partner_offers", granted=True, method=ConsentMethod.FORM, user=customer)
    consent_record(
        purpose="marketing_email", granted=True, method=ConsentMethod.FORM, email=customer.email
    )
    consent_record(
        purpose="portfolio", granted=True, method=ConsentMethod.FORM, user=customer, target="r:1"
    )

    result = marketing_optout(email=customer.email, method=ConsentMethod.EMAIL_LINK, meta=meta)

    assert result.subscribers == 1
    for key in ("marketing_email", "partner_offers"):
        assert not consent_allows(purpose=key, user=customer)
    assert not consent_allows(purpose="marketing_email", email=customer.email)
    # Not marketing: untouched.
    assert ConsentState.objects.get(subject=f"u:{customer.pk}", purpose__key="portfolio").granted
    assert not marketing_status(user=customer).subscribed
    assert Subscriber.objects.get(email=customer.email).status == SubscriberStatus.UNSUBSCRIBED
    withdrawals = ConsentEvent.objects.filter(granted=False)
    assert {e.purpose.key for e in withdrawals} == {"marketing_email", "partner_offers"}
    assert all(e.ip_address == "192.0.2.1" for e in withdrawals)
    # Idempotent: nothing more to withdraw.
    assert marketing_optout(user=customer, method=ConsentMethod.FORM).withdrawn == 0


def test_optout_for_an_unknown_address_records_the_objection_CON_2() -> None:
    marketing_optout(email="Never@Example.com", method=ConsentMethod.FORM)
    event = ConsentEvent.objects.get()
    assert not event.granted and event.subject == "e:never@example.com"


def test_staff_optout_needs_a_note_and_is_audited_CON_2(privacy_officer: Any) -> None:
    from accounts.models import AuditAction, AuditEvent
    from consent.services.ledger import ConsentRefused

    subscriber_make("letter@example.com")
    with pytest.raises(ConsentRefused):
        marketing_optout(
            email="letter@example.com", method=ConsentMethod.STAFF, actor=privacy_officer
        )
    marketing_optout(
        email="letter@example.com",
        method=ConsentMethod.STAFF,
        actor=privacy_officer,
        note="objection by letter of 3 March",
    )
    assert not consent_allows(purpose="marketing_email", email="letter@example.com")
    assert AuditEvent.objects.filter(
        action=AuditAction.CONSENT_RECORDED, actor=privacy_officer
    ).exists()


def test_marketing_status_follows_the_ledger(customer: Any) -> None:
    assert not marketing_status(user=customer).subscribed
    subscriber_make(customer.email)
    assert marketing_status(user=customer).subscribed
    consent_record(
        purpose="marketing_email", granted=False, method=ConsentMethod.FORM, email=customer.email
    )
    assert not marketing_status(user=customer).subscribed


def test_resubscribing_after_unsubscribe_needs_a_new_confirmation(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    sub = subscriber_make("back@example.com")
    marketing_optout(email=sub.email, method=ConsentMethod.EMAIL_LINK)
    with django_capture_on_commit_callbacks(execute=True):
        _subscribe(client, sub.email)
    sub.refresh_from_db()
    assert sub.status == SubscriberStatus.PENDING and len(mail.outbox) == 1
    assert not consent_allows(purpose="marketing_email", email=sub.email)
