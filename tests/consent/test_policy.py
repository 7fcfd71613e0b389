"""Privacy policy versions (CON-5): drafts, publishing, the emails and the site notices."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, Notification
from common import fanout
from common.models import FanoutStatus
from consent.models import PolicyAcknowledgement, PolicyNoticeSend, PolicyStatus, PolicyVersion
from consent.selectors import policy_current
from consent.services.policy import (
    NOTICE_KIND,
    PolicyError,
    policy_notice_cache_clear,
    policy_publish,
)
from tests.conftest import login_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_notice_cache():
    policy_notice_cache_clear()
    yield
    policy_notice_cache_clear()


def draft(number: int | None = None, **kwargs) -> PolicyVersion:
    if number is None:
        latest = PolicyVersion.objects.order_by("-number").values_list("number", flat=True)
        number = (latest.first() or 0) + 1
    kwargs.setdefault("summary", f"What changed in version {number}.")
    return PolicyVersion.objects.create(number=number, **kwargs)


def notice_html(client, url: str = "/") -> str:
    html = client.get(url).content.decode()
    if 'id="policy-notice"' not in html:
        return ""
    return html.split('id="policy-notice"')[1].split("</section>")[0]


@pytest.fixture
def holders(db) -> list:
    """Five account holders, plus two people who are not reachable account holders."""
    people = [UserFactory(email=f"holder{n}@example.com") for n in range(5)]
    UserFactory(email="unverified@example.com", email_verified_at=None)
    UserFactory(email="closed@example.com", is_active=False)
    return people


# --- Drafts and publishing ------------------------------------------------------------------
def test_admin_numbers_new_drafts_and_edits_only_drafts_CON_5(privacy_officer) -> None:
    draft(4, status=PolicyStatus.PUBLISHED, published_at=timezone.now())
    c = login_client(privacy_officer, verified=True)
    response = c.post(
        "/admin/consent/policyversion/add/",
        {
            "summary": "Clearer wording about cookies.",
            "reduces_rights": "",
            "effective_at_0": timezone.now().strftime("%Y-%m-%d"),
            "effective_at_1": "00:00:00",
            "body": "Our words.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    new = PolicyVersion.objects.get(summary="Clearer wording about cookies.")
    assert new.number == 5 and new.status == PolicyStatus.DRAFT
    # A draft is edited; a published version is only viewed.
    change = c.get(f"/admin/consent/policyversion/{new.pk}/change/")
    assert change.status_code == 200 and b"Publish" in change.content
    published = PolicyVersion.objects.get(number=4)
    view = c.get(f"/admin/consent/policyversion/{published.pk}/change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert (
        c.post(
            f"/admin/consent/policyversion/{published.pk}/change/", {"summary": "Rewritten"}
        ).status_code
        == 403
    )
    assert PolicyVersion.objects.get(number=4).summary != "Rewritten"


def test_publish_sets_dates_and_audits_CON_5(privacy_officer) -> None:
    version = draft(1, effective_at=timezone.now() - timedelta(days=3))
    before = timezone.now()
    policy_publish(version=version, actor=privacy_officer)
    version.refresh_from_db()
    assert version.status == PolicyStatus.PUBLISHED
    assert version.published_at is not None and version.published_at >= before
    assert version.published_by == privacy_officer
    # A date already past means "when published".
    assert version.effective_at >= before
    assert policy_current() == version
    event = AuditEvent.objects.get(action=AuditAction.POLICY_PUBLISHED)
    assert event.actor == privacy_officer and event.detail["version"] == 1
    assert not PolicyNoticeSend.objects.exists()  # not rights-reducing: no email


def test_future_effective_date_is_kept_and_not_yet_current_CON_5(privacy_officer) -> None:
    old = draft(1)
    policy_publish(version=old, actor=privacy_officer)
    later = draft(2, effective_at=timezone.now() + timedelta(days=14))
    policy_publish(version=later, actor=privacy_officer)
    later.refresh_from_db()
    assert later.effective_at > timezone.now() + timedelta(days=13)
    assert policy_current() == old
    # A newer version may not take effect before one already announced.
    early = draft(3)
    with pytest.raises(PolicyError, match="cannot take effect before"):
        policy_publish(version=early, actor=privacy_officer)
    early.refresh_from_db()
    assert early.status == PolicyStatus.DRAFT


def test_publishing_twice_or_without_permission_is_refused_CON_5(privacy_officer, support) -> None:
    version = draft(1, reduces_rights=True)
    with pytest.raises(PermissionDenied):
        policy_publish(version=version, actor=support)
    assert PolicyVersion.objects.get(pk=version.pk).status == PolicyStatus.DRAFT
    assert (
        login_client(support, verified=True)
        .post(f"/admin/consent/policyversion/{version.pk}/publish/")
        .status_code
        == 403
    )
    assert PolicyVersion.objects.get(pk=version.pk).status == PolicyStatus.DRAFT

    c = login_client(privacy_officer, verified=True)
    confirm = c.get(f"/admin/consent/policyversion/{version.pk}/publish/")
    assert confirm.status_code == 200
    assert b"every account holder with a verified address" in confirm.content
    assert c.post(f"/admin/consent/policyversion/{version.pk}/publish/").status_code == 302
    again = c.post(f"/admin/consent/policyversion/{version.pk}/publish/")
    assert again.status_code == 400 and b"already published" in again.content
    with pytest.raises(PolicyError, match="already published"):
        policy_publish(version=version, actor=privacy_officer)
    assert AuditEvent.objects.filter(action=AuditAction.POLICY_PUBLISHED).count() == 1
    assert PolicyNoticeSend.objects.filter(version=version).count() >= 1


def test_support_cannot_open_the_publish_page(support) -> None:
    version = draft(1)
    response = login_client(support, verified=True).get(
        f"/admin/consent/policyversion/{version.pk}/publish/"
    )
    assert response.status_code == 403


def test_admin_action_publishes_drafts(privacy_officer) -> None:
    version = draft(1)
    c = login_client(privacy_officer, verified=True)
    response = c.post(
        "/admin/consent/policyversion/",
        {"action": "publish_selected", "_selected_action": [version.pk]},
    )
    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=version.pk).status == PolicyStatus.PUBLISHED


# --- A rights-reducing version: one email and one notification per account holder -------------
def test_reducing_version_emails_every_account_holder_once_CON_5(
    privacy_officer, holders, django_capture_on_commit_callbacks
) -> None:
    version = draft(1, reduces_rights=True, summary="We keep invoices longer.")
    with django_capture_on_commit_callbacks(execute=True):
        policy_publish(version=version, actor=privacy_officer)
    expected = {u.email for u in holders} | {privacy_officer.email}
    sent = Counter(m.to[0] for m in mail.outbox)
    assert set(sent) == expected and set(sent.values()) == {1}
    message = mail.outbox[0]
    assert "privacy policy changes" in message.subject
    assert "We keep invoices longer." in message.body
    assert "/consent/policy/versions/1/" in message.body
    assert "unsubscribe" not in message.body.lower()
    assert PolicyNoticeSend.objects.filter(version=version, status=FanoutStatus.SENT).count() == 6

    # Running the fan-out again (a duplicate task, the sweep) sends nothing more.
    fanout.fanout_run_batch(kind=NOTICE_KIND, group_id=version.pk)
    with django_capture_on_commit_callbacks(execute=True):
        fanout.fanout_sweep_all()
    assert len(mail.outbox) == 6

    notes = Notification.objects.filter(link="/consent/policy/versions/1/")
    assert Counter(notes.values_list("user__email", flat=True)) == Counter(
        dict.fromkeys(expected, 1)
    )


def test_an_abandoned_batch_is_swept_without_duplicates_CON_5(
    privacy_officer, holders, monkeypatch, settings, django_capture_on_commit_callbacks
) -> None:
    version = draft(1, reduces_rights=True)
    with django_capture_on_commit_callbacks(execute=False):  # no worker picks it up yet
        policy_publish(version=version, actor=privacy_officer)
    assert PolicyNoticeSend.objects.filter(version=version).count() == 6
    assert not mail.outbox

    # A worker sends three messages, then dies before recording anything.
    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(fanout, "_finish_rows", die)
    with pytest.raises(SystemExit):
        fanout.fanout_run_batch(kind=NOTICE_KIND, group_id=version.pk, size=3)
    monkeypatch.undo()
    assert len(mail.outbox) == 3
    assert PolicyNoticeSend.objects.filter(status=FanoutStatus.SENDING).count() == 3

    # Long after, the sweep settles the dead claim from its journal and restarts the rest.
    PolicyNoticeSend.objects.filter(status=FanoutStatus.SENDING).update(
        claimed_at=timezone.now() - timedelta(hours=2)
    )
    cache.delete(fanout._key("beat", NOTICE_KIND, version.pk))
    with django_capture_on_commit_callbacks(execute=True):
        report = fanout.fanout_sweep_all()
    assert report[NOTICE_KIND]["sent"] == 3 and report[NOTICE_KIND]["restarted"] == 1
    sent = Counter(m.to[0] for m in mail.outbox)
    assert len(sent) == 6 and set(sent.values()) == {1}
    assert set(PolicyNoticeSend.objects.values_list("status", flat=True)) == {FanoutStatus.SENT}


def test_account_closed_before_sending_is_skipped(
    privacy_officer, holders, django_capture_on_commit_callbacks
) -> None:
    version = draft(1, reduces_rights=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        policy_publish(version=version, actor=privacy_officer)
    holders[0].is_active = False
    holders[0].save(update_fields=["is_active"])
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    assert holders[0].email not in {m.to[0] for m in mail.outbox}
    assert len(mail.outbox) == 5
    row = PolicyNoticeSend.objects.get(user=holders[0])
    assert row.status == FanoutStatus.SKIPPED


# --- Notices on the site -----------------------------------------------------------------------
def test_reducing_banner_stays_until_acknowledged_CON_5(
    privacy_officer, customer, other_customer, django_capture_on_commit_callbacks
) -> None:
    version = draft(1, reduces_rights=True, summary="Longer log retention.")
    with django_capture_on_commit_callbacks(execute=True):
        policy_publish(version=version, actor=privacy_officer)
    me = login_client(customer)
    banner = notice_html(me)
    assert "reduces your rights" in banner and "Longer log retention." in banner
    assert "I have read this" in banner
    assert notice_html(me, "/privacy/")  # on every page
    # Still there long after the notice window of ordinary changes.
    PolicyVersion.objects.filter(pk=version.pk).update(
        effective_at=timezone.now() - timedelta(days=400)
    )
    assert notice_html(me)

    response = me.post("/consent/policy/notice/dismiss/", {"version": "1", "next": "/orders/"})
    assert response.status_code == 302 and response["Location"] == "/orders/"
    assert PolicyAcknowledgement.objects.filter(user=customer, version=version).exists()
    assert notice_html(me) == ""
    assert notice_html(login_client(other_customer))  # everyone acknowledges for themselves
    # Anonymous visitors are not account holders: no banner once the notice window is over.
    policy_notice_cache_clear()
    assert notice_html(Client()) == ""


def test_new_account_holders_get_no_notice_of_older_changes(privacy_officer) -> None:
    version = draft(1, reduces_rights=True)
    policy_publish(version=version, actor=privacy_officer)
    newcomer = UserFactory(email="new@example.com")
    assert notice_html(login_client(newcomer)) == ""


def test_ordinary_change_shows_a_dismissable_notice_CON_5(
    privacy_officer, customer, client, settings
) -> None:
    settings.POLICY_NOTICE_DAYS = 30
    bystander = UserFactory(email="bystander@example.com")
    anonymous_before = notice_html(client)
    assert anonymous_before == ""  # cached "no notice"...
    version = draft(1, summary="Clearer cookie wording.")
    policy_publish(version=version, actor=privacy_officer)
    # ...and publishing shows the notice at once.
    notice = notice_html(client)
    assert "Clearer cookie wording." in notice and "Dismiss" in notice
    assert "reduces your rights" not in notice

    me = login_client(customer)
    assert "Dismiss" in notice_html(me)
    assert me.post("/consent/policy/notice/dismiss/", {"version": "1"}).status_code == 302
    assert notice_html(me) == ""

    # Anonymous: the essential cookie remembers the dismissal (no JS, a plain POST).
    response = client.post(
        "/consent/policy/notice/dismiss/", {"version": "1", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/privacy/"
    assert response.cookies["cf_policy_seen"].value == "1"
    assert response.cookies["cf_policy_seen"]["httponly"]
    assert notice_html(client) == ""
    assert notice_html(Client())  # another browser still sees it

    # After the notice window, nobody sees it any more.
    PolicyVersion.objects.filter(pk=version.pk).update(
        effective_at=timezone.now() - timedelta(days=31)
    )
    policy_notice_cache_clear()  # the cache lives a minute at most
    assert notice_html(Client()) == ""
    assert notice_html(login_client(bystander)) == ""


def test_dismiss_refuses_bad_input(client, customer) -> None:
    assert client.post("/consent/policy/notice/dismiss/", {"version": "7"}).status_code == 400
    assert client.post("/consent/policy/notice/dismiss/", {"version": "x"}).status_code == 400
    draft(1)  # a draft cannot be dismissed either
    assert client.post("/consent/policy/notice/dismiss/", {"version": "1"}).status_code == 400
    assert client.get("/consent/policy/notice/dismiss/").status_code == 405
    assert not PolicyAcknowledgement.objects.exists()


def _policy_queries(client, url: str = "/") -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum("consent_policy" in q["sql"] for q in ctx.captured_queries)


def test_notice_costs_no_query_for_visitors_and_one_for_account_holders_CON_5(
    client, customer
) -> None:
    _policy_queries(client)  # fills the short-lived cache
    assert _policy_queries(client) == 0
    assert _policy_queries(client, "/accounts/login/") == 0
    assert _policy_queries(login_client(customer)) == 1


def test_seeing_a_newer_notice_covers_older_ordinary_ones_CON_5(privacy_officer, customer) -> None:
    ordinary = draft(1, summary="Ordinary change.")
    policy_publish(version=ordinary, actor=privacy_officer)
    reducing = draft(2, reduces_rights=True, summary="Reducing change.")
    policy_publish(version=reducing, actor=privacy_officer)
    newest = draft(3, summary="Newest ordinary change.")
    policy_publish(version=newest, actor=privacy_officer)
    me = login_client(customer)
    assert "Newest ordinary change." in notice_html(me)
    me.post("/consent/policy/notice/dismiss/", {"version": "3"})
    # On another device too: the acknowledgement is the account's, not the browser's.
    other_device = login_client(customer)
    assert "Reducing change." in notice_html(other_device)
    other_device.post("/consent/policy/notice/dismiss/", {"version": "2"})
    assert notice_html(login_client(customer)) == ""
