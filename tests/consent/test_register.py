"""The processing register in the admin (TRN-1, DSR-6) and recorded disclosures (DSR-5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent
from consent.models import (
    Disclosure,
    DisclosureSubject,
    LawfulBasis,
    ProcessingPurpose,
    Recipient,
    RecipientRole,
    SupervisoryAuthority,
    TransferSafeguard,
)
from consent.services import register
from consent.services.register import (
    DisclosureRefused,
    disclosure_record,
    disclosures_for_subject,
)
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(db) -> Recipient:
    return Recipient.objects.create(
        name="Print Partner GmbH",
        address="Hauptstrasse 1, 10115 Berlin",
        role=RecipientRole.CONTROLLER,
        service="Sends our catalogue by post",
        data_categories=["contact"],
        country="DE",
    )


@pytest.fixture
def police(db) -> Recipient:
    return Recipient.objects.create(
        name="National Cyber Crime Unit",
        address="Harcourt Square, Dublin 2",
        role=RecipientRole.AUTHORITY,
        service="Investigates attacks",
        country="IE",
    )


# --- Recording disclosures (DSR-5) --------------------------------------------------------------
def test_disclosure_is_recorded_with_subjects_and_audited_DSR_5(
    privacy_officer, customer, other_customer, partner
) -> None:
    disclosure = disclosure_record(
        actor=privacy_officer,
        recipient=partner,
        categories=["contact", "identity"],
        purpose="marketing",
        description="Names and postal addresses for the spring catalogue.",
        for_direct_marketing=True,
        users=[customer, other_customer.pk, customer],
        emails=["Guest@Example.com", "guest@example.com", ""],
    )
    assert disclosure.categories == ["contact", "identity"]
    assert disclosure.purpose.key == "marketing" and disclosure.for_direct_marketing
    assert disclosure.recorded_by == privacy_officer
    subjects = DisclosureSubject.objects.filter(disclosure=disclosure)
    assert {s.user_id for s in subjects if s.user_id} == {customer.pk, other_customer.pk}
    assert [s.email for s in subjects if not s.user_id] == ["guest@example.com"]
    event = AuditEvent.objects.get(action=AuditAction.DISCLOSURE_RECORDED)
    assert event.actor == privacy_officer
    assert event.detail["disclosure"] == disclosure.pk and event.detail["subjects"] == 3


def test_disclosure_and_its_audit_row_share_one_transaction_DSR_5(
    privacy_officer, customer, partner, monkeypatch
) -> None:
    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(register, "audit_log_write", broken)
    with pytest.raises(RuntimeError):
        disclosure_record(
            actor=privacy_officer,
            recipient=partner,
            categories=["contact"],
            purpose="marketing",
            description="x",
            users=[customer],
        )
    assert not Disclosure.objects.exists() and not DisclosureSubject.objects.exists()


@pytest.mark.parametrize(
    ("categories", "purpose", "description", "message"),
    [
        ([], "marketing", "x", "Name the categories"),
        (["contact", "shoe_size"], "marketing", "x", "Unknown data categories: shoe_size"),
        (["contact"], "no_such_purpose", "x", "Unknown purpose"),
        (["contact"], "marketing", "  ", "Describe what was handed over"),
    ],
)
def test_bad_disclosures_are_refused(
    privacy_officer, partner, categories, purpose, description, message
) -> None:
    with pytest.raises(DisclosureRefused, match=message):
        disclosure_record(
            actor=privacy_officer,
            recipient=partner,
            categories=categories,
            purpose=purpose,
            description=description,
        )
    with pytest.raises(DisclosureRefused, match="has happened"):
        disclosure_record(
            actor=privacy_officer,
            recipient=partner,
            categories=["contact"],
            purpose="marketing",
            description="x",
            disclosed_at=timezone.now() + timedelta(days=1),
        )
    assert not Disclosure.objects.exists()


def test_disclosures_for_subject_by_year_and_direct_marketing_DSR_4_DSR_5(
    privacy_officer, customer, other_customer, partner, police
) -> None:
    def record(when: datetime, recipient: Recipient, marketing: bool, **who) -> Disclosure:
        return disclosure_record(
            actor=privacy_officer,
            recipient=recipient,
            categories=["contact"] if marketing else ["network", "usage"],
            purpose="marketing" if marketing else "security",
            description="test",
            for_direct_marketing=marketing,
            disclosed_at=when,
            **who,
        )

    last_year = timezone.now().year - 1
    catalogue = record(datetime(last_year, 3, 1, tzinfo=UTC), partner, True, users=[customer])
    logs = record(datetime(last_year, 6, 1, tzinfo=UTC), police, False, users=[customer])
    older = record(datetime(last_year - 1, 6, 1, tzinfo=UTC), partner, True, users=[customer])
    # Recorded by address before the person had an account.
    by_email = record(
        datetime(last_year, 9, 1, tzinfo=UTC), partner, True, emails=[customer.email.upper()]
    )
    record(datetime(last_year, 3, 1, tzinfo=UTC), partner, True, users=[other_customer])

    answer = disclosures_for_subject(user=customer, year=last_year, direct_marketing=True)
    assert list(answer) == [catalogue, by_email]
    first = answer[0]
    assert first.recipient.name == "Print Partner GmbH"
    assert first.recipient.address == "Hauptstrasse 1, 10115 Berlin"
    assert set(disclosures_for_subject(user=customer)) == {catalogue, logs, older, by_email}
    assert list(disclosures_for_subject(email=customer.email, year=last_year - 1)) == [older]
    assert list(disclosures_for_subject(user=customer, direct_marketing=False)) == [logs]
    assert not disclosures_for_subject().exists()


# --- The register in the admin (TRN-1, DSR-6) ---------------------------------------------------
def test_purpose_admin_requires_the_interest_for_legitimate_interest_TRN_1(
    privacy_officer,
) -> None:
    purpose = ProcessingPurpose.objects.get(key="orders")
    c = login_client(privacy_officer, verified=True)
    url = f"/admin/consent/processingpurpose/{purpose.pk}/change/"
    bad = c.post(
        url,
        {
            "name": "Orders",
            "lawful_basis": LawfulBasis.LEGITIMATE_INTEREST,
            "legitimate_interest": " ",
            "description": "",
            "position": 0,
        },
    )
    assert bad.status_code == 200
    assert b"A legitimate interest must be stated" in bad.content
    purpose.refresh_from_db()
    assert purpose.lawful_basis == LawfulBasis.CONTRACT
    ok = c.post(
        url,
        {
            "key": "hacked",  # read-only: ignored
            "name": "Orders, reworded",
            "lawful_basis": LawfulBasis.LEGITIMATE_INTEREST,
            "legitimate_interest": "Finishing work customers started",
            "description": "",
            "position": 0,
        },
    )
    assert ok.status_code == 302
    purpose.refresh_from_db()
    assert purpose.key == "orders" and purpose.name == "Orders, reworded"
    # Nobody adds or deletes purposes: the registry's declarations name their keys.
    assert c.get("/admin/consent/processingpurpose/add/").status_code == 403
    assert c.post(f"/admin/consent/processingpurpose/{purpose.pk}/delete/").status_code == 403
    # The database refuses it too, whoever writes.
    purpose.legitimate_interest = ""
    with pytest.raises(IntegrityError), transaction.atomic():
        purpose.save()


def test_recipient_admin_categories_and_transfer_safeguard_TRN_1(privacy_officer) -> None:
    c = login_client(privacy_officer, verified=True)
    data = {
        "name": "Cloudy Inc",
        "address": "500 Market Street, San Francisco",
        "role": RecipientRole.PROCESSOR,
        "service": "Image storage",
        "data_categories": ["image", "network"],
        "purposes": [ProcessingPurpose.objects.get(key="orders").pk],
        "country": "US",
        "transfer_safeguard": TransferSafeguard.NOT_NEEDED,
        "safeguard_note": "",
        "active": "on",
    }
    bad = c.post("/admin/consent/recipient/add/", data)
    assert bad.status_code == 200 and b"outside the EEA" in bad.content
    assert (
        c.post("/admin/consent/recipient/add/", {**data, "data_categories": ["shoes"]}).status_code
        == 200
    )
    assert not Recipient.objects.exists()
    ok = c.post("/admin/consent/recipient/add/", {**data, "transfer_safeguard": "scc"})
    assert ok.status_code == 302
    recipient = Recipient.objects.get()
    assert recipient.data_categories == ["image", "network"]
    assert [p.key for p in recipient.purposes.all()] == ["orders"]
    assert c.post(f"/admin/consent/recipient/{recipient.pk}/delete/").status_code == 403


def test_supervisory_authority_admin_DSR_6(privacy_officer, client) -> None:
    c = login_client(privacy_officer, verified=True)
    response = c.post(
        "/admin/consent/supervisoryauthority/add/",
        {
            "name": "Data Protection Commission",
            "address": "Dublin 2",
            "website": "https://www.dataprotection.ie",
            "email": "",
            "phone": "",
            "country": "IE",
            "is_lead": "on",
        },
    )
    assert response.status_code == 302
    assert SupervisoryAuthority.objects.get().is_lead
    assert b"Data Protection Commission" in client.get("/privacy/").content


def test_disclosure_admin_records_once_then_read_only_DSR_5(
    privacy_officer, customer, partner
) -> None:
    c = login_client(privacy_officer, verified=True)
    now = timezone.now() - timedelta(hours=1)
    response = c.post(
        "/admin/consent/disclosure/add/",
        {
            "recipient": partner.pk,
            "disclosed_at_0": now.strftime("%Y-%m-%d"),
            "disclosed_at_1": now.strftime("%H:%M:%S"),
            "categories": ["contact"],
            "purpose": ProcessingPurpose.objects.get(key="marketing").pk,
            "for_direct_marketing": "on",
            "description": "Catalogue mailing list",
            "subjects_description": "",
            "subject_emails": f"{customer.email.upper()}\nguest@example.org\n",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    disclosure = Disclosure.objects.get()
    assert disclosure.recorded_by == privacy_officer and disclosure.for_direct_marketing
    assert {(s.user_id, s.email) for s in disclosure.subjects.all()} == {
        (customer.pk, ""),
        (None, "guest@example.org"),
    }
    assert AuditEvent.objects.filter(action=AuditAction.DISCLOSURE_RECORDED).count() == 1
    assert list(disclosures_for_subject(user=customer)) == [disclosure]

    view = c.get(f"/admin/consent/disclosure/{disclosure.pk}/change/")
    assert view.status_code == 200
    assert b"guest@example.org" in view.content and b'name="_save"' not in view.content
    assert (
        c.post(
            f"/admin/consent/disclosure/{disclosure.pk}/change/", {"description": "edited"}
        ).status_code
        == 403
    )
    assert c.post(f"/admin/consent/disclosure/{disclosure.pk}/delete/").status_code == 403
    disclosure.refresh_from_db()
    assert disclosure.description == "Catalogue mailing list"


def test_disclosure_admin_refuses_bad_input_DSR_5(privacy_officer, partner) -> None:
    c = login_client(privacy_officer, verified=True)
    later = timezone.now() + timedelta(days=2)
    response = c.post(
        "/admin/consent/disclosure/add/",
        {
            "recipient": partner.pk,
            "disclosed_at_0": later.strftime("%Y-%m-%d"),
            "disclosed_at_1": later.strftime("%H:%M:%S"),
            "categories": ["contact"],
            "purpose": ProcessingPurpose.objects.get(key="marketing").pk,
            "description": "x",
            "subjects_description": "",
            "subject_emails": "not an address",
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Not an email address: not an address" in content
    assert "once it has happened" in content
    assert not Disclosure.objects.exists()


def test_support_cannot_touch_the_register(support) -> None:
    c = login_client(support, verified=True)
    for url in (
        "/admin/consent/disclosure/add/",
        "/admin/consent/recipient/add/",
        "/admin/consent/processingpurpose/",
    ):
        assert c.get(url).status_code == 403


def test_deploy_check_names_what_the_privacy_page_lacks_DSR_6_CON_5(privacy_officer) -> None:
    from django.core.checks import run_checks

    from consent.models import PolicyVersion
    from consent.services.policy import policy_publish

    def ids() -> set[str]:
        found = run_checks(include_deployment_checks=True, databases=["default"])
        return {message.id for message in found if message.id}

    assert {"consent.W010", "consent.W011"} <= ids()
    SupervisoryAuthority.objects.create(name="DPC", address="Dublin", country="IE")
    policy_publish(
        version=PolicyVersion.objects.create(number=1, summary="First."), actor=privacy_officer
    )
    assert not {"consent.W010", "consent.W011"} & ids()
