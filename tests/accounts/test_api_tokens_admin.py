"""Support sees customers' API tokens (never the secret) and revokes them, audited."""

from __future__ import annotations

from django.urls import reverse

from accounts.models import ApiToken, AuditAction, AuditEvent
from tests.conftest import login_client


def test_support_revokes_a_customers_token_and_it_stops_working(support, customer) -> None:
    token, secret = ApiToken.objects.create(user=customer, name="lost phone")
    client = login_client(support, verified=True)
    changelist = reverse("admin:accounts_apitoken_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert token.token_key in page.content.decode() and secret not in page.content.decode()
    response = client.post(
        changelist, {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    audit = AuditEvent.objects.get(action=AuditAction.API_TOKEN_REVOKED)
    assert audit.actor == support and audit.subject == customer
    api = login_client(customer)
    api.defaults["HTTP_AUTHORIZATION"] = f"Token {secret}"
    assert api.get("/api/v1/me/").status_code == 401


def test_a_retoucher_cannot_see_tokens(retoucher) -> None:
    client = login_client(retoucher, verified=True)
    assert client.get(reverse("admin:accounts_apitoken_changelist")).status_code == 403
