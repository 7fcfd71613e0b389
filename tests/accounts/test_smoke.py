import pytest


@pytest.mark.django_db
def test_home_and_privacy_pages_render(client):
    """CON-5 (partly): every page links the privacy policy with the word Privacy."""
    for url in ["/", "/privacy/", "/accounts/login/", "/accounts/signup/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'href="/privacy/"' in response.content
        assert b"Privacy" in response.content


def test_profile_page_for_customer(customer_client, customer):
    response = customer_client.get("/accounts/profile/")
    assert response.status_code == 200
    assert customer.email.encode() in response.content
