import pytest

pytestmark = pytest.mark.django_db(databases=["accounts", "default"])


def test_openapi_schema_lists_every_accounts_endpoint(client):
    response = client.get("/api/accounts/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert paths == {
        "/api/accounts/register/",
        "/api/accounts/token/",
        "/api/accounts/token/refresh/",
        "/api/accounts/me/",
        "/api/accounts/me/email/",
        "/api/accounts/me/password/",
        "/api/accounts/addresses/",
        "/api/accounts/addresses/{address_id}/",
    }
