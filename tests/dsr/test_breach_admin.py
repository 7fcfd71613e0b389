"""The incident register in the admin: entry, both clocks, scope, preview, confirmation
(BRE-1, BRE-2), and the request-log export of the incident window (LOG-4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, User
from dsr.models import BreachNotice, Incident, IncidentRecipient, IncidentStatus
from dsr.services.breach import incident_confirm, incident_create
from images.models import Photo
from orders.models import Order, OrderKind
from tests.conftest import login_client

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/dsr/incident/"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def officer_client(privacy_officer):
    return login_client(privacy_officer, verified=True)


def _incident(actor: User, **fields) -> Incident:
    defaults = {"message_subject": "About your photos", "message_body": "Plain words."}
    return incident_create(
        actor=actor,
        title=fields.pop("title", "Storage bucket exposed"),
        aware_at=timezone.now() - timedelta(hours=2),
        description="A bucket was public for a week.",
        **{**defaults, **fields},
    )


def _upload(customer: User, at: datetime) -> None:
    order = Order.objects.create(kind=OrderKind.PASSPORT, customer=customer, document="us_passport")
    photo = Photo.objects.create(order=order, scan="clean", status="ready")
    Photo.objects.filter(pk=photo.pk).update(created_at=at)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _register_post(**overrides) -> dict:
    data = {
        "title": "Backup copied by a former contractor",
        "aware_at": "2026-03-10T09:00",
        "description": "A backup of the orders table was copied.",
        "data_categories": ["contact", "image"],
        "subject_categories": "customers",
        "approx_subjects": "120",
        "consequences": "Phishing with order details.",
        "measures_taken": "Access revoked.",
        "measures_proposed": "Rotate keys.",
        "advice": "Beware of emails asking for payment.",
        "contact_point": "privacy@example.com",
        "notification_needed": "on",
        "no_notification_reason": "",
        "authority_notified_at": "",
        "authority_reference": "",
        "authority_content": "",
        "authority_delay_reason": "",
        "message_subject": "A breach affecting your photos",
        "message_body": "What happened, and what to do.",
    }
    data.update(overrides)
    return data


def test_officer_enters_an_incident_with_the_register_fields_and_the_72h_clock_BRE_1(
    officer_client, privacy_officer
):
    response = officer_client.post(f"{CHANGELIST}add/", _register_post())
    assert response.status_code == 302, re.findall(r"errorlist.{0,300}", response.content.decode())
    incident = Incident.objects.get()
    assert incident.reference.startswith("BRE-") and incident.status == IncidentStatus.DRAFT
    assert incident.data_categories == ["contact", "image"] and incident.approx_subjects == 120
    assert incident.authority_due == incident.aware_at + timedelta(hours=72)
    assert incident.created_by == privacy_officer
    assert AuditEvent.objects.filter(
        action=AuditAction.BREACH_DECLARED, detail__incident=incident.reference
    ).exists()


def test_no_notification_needs_its_reason_kept_in_the_register_BRE_1(officer_client):
    response = officer_client.post(f"{CHANGELIST}add/", _register_post(notification_needed=""))
    assert response.status_code == 200 and "Art. 33(5)" in response.content.decode()
    assert not Incident.objects.exists()
    response = officer_client.post(
        f"{CHANGELIST}add/",
        _register_post(notification_needed="", no_notification_reason="Encrypted, key safe."),
    )
    assert response.status_code == 302
    assert Incident.objects.get().no_notification_reason == "Encrypted, key safe."


def test_a_late_authority_notification_requires_the_reasons_for_delay_BRE_1(
    officer_client, privacy_officer
):
    incident = _incident(privacy_officer)
    url = f"{CHANGELIST}{incident.pk}/change/"
    late = timezone.localtime(incident.authority_due + timedelta(hours=1))
    post = _register_post(
        title=incident.title,
        authority_notified_at=f"{late:%Y-%m-%dT%H:%M}",
        authority_reference="DPC-2026-17",
        authority_content="Form sent.",
    )
    post.pop("aware_at")  # read-only once entered: the stored clock starts from it
    response = officer_client.post(url, post)
    assert response.status_code == 200 and "reasons for the" in response.content.decode()
    incident.refresh_from_db()
    assert incident.authority_notified_at is None
    response = officer_client.post(url, {**post, "authority_delay_reason": "Forensics first."})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.authority_reference == "DPC-2026-17"
    assert incident.authority_delay_reason == "Forensics first."
    # The authority notification is evidence (Art. 33): audited with the actor.
    from accounts.models import AuditAction, AuditEvent

    event = AuditEvent.objects.get(action=AuditAction.BREACH_AUTHORITY_NOTIFIED)
    assert event.detail["incident"] == incident.reference
    assert "authority_reference" in event.detail["fields"] and event.actor is not None
    html = officer_client.get(url).content.decode()
    assert "(late)" in html and 'id="dsr-authority-clock"' in html


def test_scope_builder_appends_rules_previews_and_clears_BRE_1(
    officer_client, privacy_officer, customer, other_customer
):
    _upload(customer, START + timedelta(days=1))
    _upload(other_customer, START - timedelta(days=1))
    incident = _incident(privacy_officer)
    url = reverse("admin:dsr_incident_scope", args=[incident.pk])
    bad = officer_client.post(url, {"kind": "uploads", "start": "2026-03-02T00:00"})
    assert bad.status_code == 400 and "start and end" in bad.content.decode()
    ok = officer_client.post(
        url, {"kind": "uploads", "start": "2026-03-02T00:00", "end": "2026-03-09T00:00"}
    )
    assert ok.status_code == 302
    incident.refresh_from_db()
    assert incident.scope == {
        "rules": [{"kind": "uploads", "start": START.isoformat(), "end": END.isoformat()}]
    }
    officer_client.post(url, {"kind": "list", "entries": "stranger@example.org, 999999"})
    html = officer_client.get(url).content.decode()
    assert "<strong>2</strong> affected: 1 account, 1 guest" in html
    assert customer.email in html and other_customer.email not in html
    assert "Plain words." in html and "Confirm and notify" in html
    listed = officer_client.post(url, {"kind": "list", "entries": "not-an-address"})
    assert listed.status_code == 400 and "Not an email or a user id" in listed.content.decode()
    officer_client.post(url, {"_clear": "1"})
    incident.refresh_from_db()
    assert incident.scope == {"rules": []}


def test_confirm_needs_the_permission_and_shows_refusals_BRE_1(
    officer_client, support, privacy_officer, customer
):
    incident = _incident(privacy_officer, message_body="")
    incident.scope = {"rules": [{"kind": "list", "emails": [customer.email]}]}
    incident.save()
    confirm = reverse("admin:dsr_incident_confirm", args=[incident.pk])
    assert login_client(support, verified=True).post(confirm).status_code in (302, 403)
    response = officer_client.post(confirm)
    assert any("Write the message" in m for m in _messages(response))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.DRAFT
    assert officer_client.get(confirm).status_code == 405


def test_confirming_in_the_admin_freezes_the_scope_and_shows_progress_BRE_1_BRE_2(
    officer_client, privacy_officer, customer, other_customer, committed
):
    incident = _incident(
        privacy_officer, scope={"rules": [{"kind": "list", "emails": [customer.email]}]}
    )
    with committed():
        response = officer_client.post(reverse("admin:dsr_incident_confirm", args=[incident.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:dsr_incident_change", args=[incident.pk])
    assert any("1 recipient frozen" in m for m in _messages(response))
    incident.refresh_from_db()
    assert incident.status != IncidentStatus.DRAFT and incident.users_due is not None
    assert list(IncidentRecipient.objects.values_list("email", flat=True)) == [customer.email]
    assert BreachNotice.objects.filter(user=customer).exists()
    assert not BreachNotice.objects.filter(user=other_customer).exists()

    html = officer_client.get(f"{CHANGELIST}{incident.pk}/change/").content.decode()
    assert 'id="dsr-incident-progress"' in html and 'id="dsr-users-clock"' in html
    assert f"incident__id__exact={incident.pk}" in html
    # The sent text is frozen with the incident; the scope page no longer offers confirmation.
    assert 'name="message_body"' not in html
    scope_html = officer_client.get(reverse("admin:dsr_incident_scope", args=[incident.pk]))
    assert "Confirm and notify" not in scope_html.content.decode()
    frozen = officer_client.post(
        reverse("admin:dsr_incident_scope", args=[incident.pk]), {"kind": "everyone"}
    )
    assert any("frozen" in m for m in _messages(frozen))

    recipients = officer_client.get(
        reverse("admin:dsr_incidentrecipient_changelist") + f"?incident__id__exact={incident.pk}"
    )
    assert recipients.status_code == 200 and customer.email in recipients.content.decode()
    notices = officer_client.get(reverse("admin:dsr_breachnotice_changelist"))
    assert notices.status_code == 200 and customer.email in notices.content.decode()


def test_the_list_shows_both_clocks_and_recipients_in_bounded_queries_BRE_2(
    officer_client, privacy_officer, customer
):
    for i in range(3):
        incident = _incident(privacy_officer, title=f"Incident {i}")
        incident.scope = {"rules": [{"kind": "list", "emails": [customer.email]}]}
        incident.save()
    incident_confirm(incident=incident, actor=privacy_officer)
    officer_client.get(CHANGELIST)  # warm the session and permission caches
    with CaptureQueriesContext(connection) as queries:
        response = officer_client.get(CHANGELIST)
    html = response.content.decode()
    assert response.status_code == 200 and incident.reference in html
    assert html.count("left</span>") >= 4  # three authority clocks, one users' clock
    assert "not started" in html
    assert len(queries) <= 15


def test_the_register_keeps_everything_no_delete_BRE_1(officer_client, privacy_officer, customer):
    incident = _incident(
        privacy_officer, scope={"rules": [{"kind": "list", "emails": [customer.email]}]}
    )
    incident_confirm(incident=incident, actor=privacy_officer)
    assert officer_client.get(f"{CHANGELIST}{incident.pk}/delete/").status_code == 403
    recipient = IncidentRecipient.objects.get()
    base = "/admin/dsr/incidentrecipient/"
    assert officer_client.get(f"{base}{recipient.pk}/delete/").status_code == 403
    assert officer_client.get(f"{base}add/").status_code == 403
    html = officer_client.get(CHANGELIST).content.decode()
    assert "delete_selected" not in html


def test_export_of_the_incident_window_posts_to_the_audited_request_log_export_LOG_4(
    officer_client, privacy_officer
):
    incident = _incident(
        privacy_officer,
        scope={"rules": [{"kind": "activity", "start": START.isoformat(), "end": END.isoformat()}]},
    )
    html = officer_client.get(f"{CHANGELIST}{incident.pk}/change/").content.decode()
    assert reverse("admin:accounts_requestlog_export") in html
    assert 'value="2026-03-02T00:00"' in html and 'value="2026-03-09T00:00"' in html
    response = officer_client.post(
        reverse("admin:accounts_requestlog_export"),
        {"start": "2026-03-02T00:00", "end": "2026-03-09T00:00", "reason": incident.reference},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    b"".join(response.streaming_content)
    assert AuditEvent.objects.filter(detail__reason=incident.reference).exists()


def test_preview_warns_when_the_send_rate_cannot_meet_one_business_day_BRE_2(
    officer_client, privacy_officer, customer, settings
):
    incident = _incident(
        privacy_officer, scope={"rules": [{"kind": "list", "emails": [customer.email]}]}
    )
    url = reverse("admin:dsr_incident_scope", args=[incident.pk])
    settings.BREACH_SEND_RATE = 0
    assert 'id="dsr-rate-warning"' not in officer_client.get(url).content.decode()
    settings.BREACH_SEND_RATE = 0.000001  # one email every 11.6 days
    html = officer_client.get(url).content.decode()
    assert 'id="dsr-rate-warning"' in html and "cannot be met" in html


def test_a_rule_must_be_chosen_and_windows_read_in_utc_BRE_1(officer_client, privacy_officer):
    incident = _incident(privacy_officer)
    url = reverse("admin:dsr_incident_scope", args=[incident.pk])
    assert officer_client.post(url, {"kind": ""}).status_code == 400
    officer_client.post(
        url, {"kind": "orders", "start": "2026-03-02T00:00", "end": "2026-03-09T00:00"}
    )
    html = officer_client.get(url).content.decode()
    assert "2026-03-02 00:00 UTC to 2026-03-09 00:00 UTC" in html
