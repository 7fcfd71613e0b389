"""The consent ledger: evidence, the one "may we?" selector, append-only rows, retention (CON-3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent
from common.http import RequestMeta
from common.maintenance import privacy_maintenance
from consent.models import (
    ConsentEvent,
    ConsentMethod,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    PolicyStatus,
    PolicyVersion,
    Subscriber,
    subject_key,
)
from consent.selectors import consent_allows, consent_granted
from consent.services.ledger import ConsentRefused, consent_record
from dsr.services.retention import retention_run_all
from tests.conftest import login_client

pytestmark = pytest.mark.django_db
META = RequestMeta(ip_address="203.0.113.9", user_agent="Mozilla/5.0 (X11; Linux) Firefox/140")


def test_consent_event_records_full_evidence_CON_3(customer) -> None:
    policy = PolicyVersion.objects.create(
        number=3, status=PolicyStatus.PUBLISHED, summary="First", effective_at=timezone.now()
    )
    wording = "Send me your newsletter (exact words shown on the form)."
    event = consent_record(
        purpose="marketing_email",
        granted=True,
        method=ConsentMethod.FORM,
        user=customer,
        wording=wording,
        meta=META,
    )
    assert event is not None
    event.refresh_from_db()
    assert event.subject == f"u:{customer.pk}" and event.user == customer
    assert event.purpose.key == "marketing_email" and event.granted
    assert event.policy_version == policy
    assert event.wording.text == wording
    assert event.wording.digest == ConsentText.digest_of(wording)
    assert event.method == ConsentMethod.FORM
    assert event.ip_address == "203.0.113.9" and "Firefox" in event.user_agent
    # The same wording is stored once, however many people agree to it.
    consent_record(
        purpose="marketing_email",
        granted=True,
        method=ConsentMethod.FORM,
        email="x@example.com",
        wording=wording,
    )
    assert ConsentText.objects.filter(digest=ConsentText.digest_of(wording)).count() == 1


def test_default_wording_is_the_purposes_text_CON_3(customer) -> None:
    event = consent_record(
        purpose="marketing_email", granted=True, method=ConsentMethod.FORM, user=customer
    )
    assert event is not None
    assert event.wording.text == ConsentPurpose.objects.get(key="marketing_email").wording


def test_selector_answers_with_the_latest_choice_CON_3(customer, other_customer) -> None:
    assert not consent_allows(purpose="marketing_email", user=customer)
    consent_record(
        purpose="marketing_email", granted=True, method=ConsentMethod.FORM, user=customer
    )
    assert consent_allows(purpose="marketing_email", user=customer)
    assert not consent_allows(purpose="marketing_email", user=other_customer)
    consent_record(
        purpose="marketing_email", granted=False, method=ConsentMethod.FORM, user=customer
    )
    assert not consent_allows(purpose="marketing_email", user=customer)
    assert ConsentEvent.objects.filter(user=customer).count() == 2
    assert ConsentState.objects.filter(user=customer).count() == 1


def test_email_subjects_and_per_object_targets(customer) -> None:
    consent_record(
        purpose="marketing_email",
        granted=True,
        method=ConsentMethod.FORM,
        email=" Ann@Example.com ",
    )
    assert consent_allows(purpose="marketing_email", email="ann@example.com")
    consent_record(
        purpose="portfolio",
        granted=True,
        method=ConsentMethod.FORM,
        user=customer,
        target="result:7",
    )
    assert consent_allows(purpose="portfolio", user=customer, target="result:7")
    assert not consent_allows(purpose="portfolio", user=customer, target="result:8")
    assert not consent_allows(purpose="portfolio", user=customer)


def test_bad_consent_requests_are_refused(customer) -> None:
    with pytest.raises(ConsentRefused, match="Unknown purpose"):
        consent_record(purpose="nope", granted=True, method=ConsentMethod.FORM, user=customer)
    with pytest.raises(ConsentRefused, match="per item"):
        consent_record(purpose="portfolio", granted=True, method=ConsentMethod.FORM, user=customer)
    with pytest.raises(ConsentRefused, match="once"):
        consent_record(
            purpose="marketing_email",
            granted=True,
            method=ConsentMethod.FORM,
            user=customer,
            target="x",
        )
    with pytest.raises(ConsentRefused, match="written request"):
        consent_record(
            purpose="marketing_email", granted=True, method=ConsentMethod.STAFF, user=customer
        )
    with pytest.raises(ConsentRefused, match="browser"):
        consent_record(purpose="analytics", granted=True, method=ConsentMethod.FORM, user=customer)
    assert not ConsentEvent.objects.exists()


def test_retired_purpose_can_be_withdrawn_but_not_given(customer) -> None:
    consent_record(
        purpose="marketing_email", granted=True, method=ConsentMethod.FORM, user=customer
    )
    ConsentPurpose.objects.filter(key="marketing_email").update(active=False)
    assert not consent_allows(purpose="marketing_email", user=customer)
    with pytest.raises(ConsentRefused):
        consent_record(
            purpose="marketing_email", granted=True, method=ConsentMethod.FORM, user=customer
        )
    consent_record(
        purpose="marketing_email", granted=False, method=ConsentMethod.FORM, user=customer
    )


def test_only_if_changed_skips_repeats(customer) -> None:
    kwargs = {"purpose": "marketing_email", "method": ConsentMethod.FORM, "user": customer}
    assert consent_record(granted=False, only_if_changed=True, **kwargs) is not None
    assert consent_record(granted=False, only_if_changed=True, **kwargs) is None
    assert consent_record(granted=True, only_if_changed=True, **kwargs) is not None
    assert ConsentEvent.objects.count() == 2


def test_ledger_is_append_only_CON_3(customer) -> None:
    event = consent_record(
        purpose="marketing_email", granted=True, method=ConsentMethod.FORM, user=customer
    )
    assert event is not None
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        ConsentEvent.objects.filter(pk=event.pk).update(granted=False)
    with pytest.raises(PermissionError):
        ConsentEvent.objects.all().delete()
    with privacy_maintenance():
        ConsentEvent.objects.filter(pk=event.pk).update(note="maintenance may")


def test_batch_filter_checks_consent_in_the_query(customer) -> None:
    """A campaign's batch query decides per row with one EXISTS, not one query per person."""
    a = Subscriber.objects.create(
        email="a@example.com",
        consent_subject=subject_key(email="a@example.com"),
        wording=ConsentText.objects.create(digest="d" * 64, text="t"),
    )
    b = Subscriber.objects.create(
        email="b@example.com", consent_subject=subject_key(email="b@example.com"), wording=a.wording
    )
    for s, granted in ((a, True), (b, True)):
        consent_record(
            purpose="marketing_email", granted=granted, method=ConsentMethod.FORM, email=s.email
        )
    consent_record(
        purpose="marketing_email", granted=False, method=ConsentMethod.FORM, email=b.email
    )
    allowed = Subscriber.objects.filter(consent_granted(purpose="marketing_email"))
    assert list(allowed) == [a]


def test_superseded_evidence_ages_out_but_current_answers_stay(settings, customer) -> None:
    """Retention (registry rules): old replaced evidence goes; the deciding event stays."""
    kwargs = {"purpose": "marketing_email", "method": ConsentMethod.FORM, "user": customer}
    first = consent_record(granted=True, **kwargs)
    second = consent_record(granted=True, **kwargs)
    assert first is not None and second is not None
    old = timezone.now() - timedelta(days=settings.CONSENT_EVIDENCE_DAYS + 1)
    with privacy_maintenance():
        ConsentEvent.objects.update(created_at=old)
    retention_run_all(force=True)
    assert not ConsentEvent.objects.filter(pk=first.pk).exists()
    assert ConsentEvent.objects.filter(pk=second.pk).exists()
    assert consent_allows(purpose="marketing_email", user=customer)


def test_anonymous_browsers_choices_go_after_the_cookie_expires(settings) -> None:
    event = consent_record(
        purpose="analytics", granted=True, method=ConsentMethod.BANNER, visitor="abc"
    )
    assert event is not None
    with privacy_maintenance():
        ConsentEvent.objects.update(
            created_at=F("created_at") - timedelta(days=settings.CONSENT_COOKIE_DAYS + 31)
        )
    ConsentState.objects.update(
        updated_at=timezone.now() - timedelta(days=settings.CONSENT_COOKIE_DAYS + 1)
    )
    retention_run_all(force=True)
    assert not ConsentEvent.objects.exists() and not ConsentState.objects.exists()


def test_staff_record_a_written_request_with_audit_CON_3(privacy_officer, customer) -> None:
    client = login_client(privacy_officer, verified=True)
    url = reverse("admin:consent_consentevent_record")
    purpose = ConsentPurpose.objects.get(key="marketing_email")
    bad = client.post(url, {"email": customer.email, "purpose": purpose.pk, "granted": "1"})
    assert bad.status_code == 400 and not ConsentEvent.objects.exists()
    response = client.post(
        url,
        {
            "email": customer.email.upper(),
            "purpose": purpose.pk,
            "granted": "1",
            "note": "Letter of 3 Nov 2026, ref L-42",
        },
    )
    assert response.status_code == 302
    event = ConsentEvent.objects.get()
    assert event.user == customer and event.method == ConsentMethod.STAFF
    assert event.actor == privacy_officer and "L-42" in event.note
    audit = AuditEvent.objects.get(action=AuditAction.CONSENT_RECORDED)
    assert audit.actor == privacy_officer and audit.subject == customer


def test_staff_without_permission_cannot_record(support, customer) -> None:
    client = login_client(support, verified=True)
    response = client.get(reverse("admin:consent_consentevent_record"))
    assert response.status_code == 403
