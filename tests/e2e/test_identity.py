"""Identity as a client meets it, against the running API: throttled logins, the second
factor, account changes that end sessions at once, and bad input that is never a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import PASSWORD, SECOND_ADMIN, Backbone, running_backbone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    # The API trusts the test client as a proxy, so X-Forwarded-For names each "workstation".
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BACKBONE_TRUSTED_PROXIES", '["127.0.0.1"]')
        with running_backbone(tmp_path_factory.mktemp("identity"), settings, 900) as running:
            yield running


def at(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def new_user(
    backbone: Backbone, role: str = "nurse", totp_secret: str | None = None
) -> tuple[str, str, str | None]:
    """A fresh account: its username, id and (for admin or compliance) its TOTP secret."""
    username = f"id{uuid.uuid4().hex[:8]}"
    body = {"username": username, "display_name": "Test", "role": role, "password": PASSWORD}
    if totp_secret is not None:
        body["totp_secret"] = totp_secret
    created = backbone.login("admin").post("/v1/admin/users", json=body)
    assert created.status_code == 201, created.text
    if created.json()["status"] == "pending_approval":  # admin, compliance: two people
        approved = backbone.login(SECOND_ADMIN).post(
            f"/v1/admin/users/{created.json()['id']}/approve"
        )
        assert approved.status_code == 201, approved.text
    return username, created.json()["id"], created.json().get("totp_secret") or totp_secret


def token(
    client: httpx.Client, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return client.post(
        "/v1/auth/token",
        data={"username": username, "password": password, **extra},
        headers=at("192.0.2.10"),
    )


def bearer(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_forty_parallel_wrong_passwords_check_at_most_five_and_lock_no_one_out(
    backbone: Backbone,
) -> None:
    username, _, _ = new_user(backbone)

    def guess(i: int) -> httpx.Response:
        with backbone.client() as client:
            return client.post(
                "/v1/auth/token",
                data={"username": username, "password": f"guess {i}"},
                headers=at("203.0.113.99"),
            )

    with ThreadPoolExecutor(max_workers=40) as workers:
        answers = list(workers.map(guess, range(40)))

    statuses = [a.status_code for a in answers]
    assert statuses.count(401) <= 5 and 200 not in statuses
    assert set(statuses) <= {401, 423, 429}, statuses
    held = [a for a in answers if a.status_code in (423, 429)]
    assert len(held) >= 35
    assert all(int(a.headers["Retry-After"]) >= 1 for a in held)
    # the clinician at their own workstation logs in as usual
    with backbone.client() as client:
        assert token(client, username).status_code == 200
    alerts = backbone.login("compliance").get("/v1/audit/alerts").json()
    counted = [a for a in alerts if a["kind"] == "failed_logins" and a["username"] == username]
    assert counted and int(counted[0]["detail"].split()[0]) <= 5
    assert any(a["kind"] == "locked_out" and a["username"] == username for a in alerts)


def test_a_non_ascii_code_is_a_401_and_counts_as_a_failure(backbone: Backbone) -> None:
    username, _, _ = new_user(backbone, role="compliance")
    with backbone.client() as client:
        answers = [
            client.post(
                "/v1/auth/token",
                data={"username": username, "password": PASSWORD, "otp": "é12345"},
                headers=at("192.0.2.77"),
            )
            for _ in range(5)
        ]

    assert [a.status_code for a in answers[:4]] == [401] * 4
    assert answers[0].headers["content-type"].startswith("application/problem+json")
    assert answers[4].status_code == 423  # the fifth counted failure holds this address back


def test_an_admin_account_gets_a_secret_once_and_each_code_works_once(
    backbone: Backbone,
) -> None:
    username, _, secret = new_user(backbone, role="admin")
    assert secret is not None
    with backbone.client() as client:
        without = token(client, username)
        code = pyotp.TOTP(secret).now()
        first = token(client, username, otp=code)
        again = token(client, username, otp=code)

    assert without.status_code == 401
    assert first.status_code == 200, first.text
    assert again.status_code == 401


@pytest.mark.parametrize(
    "secret",
    ["JBSWY3DPEHPK3PXPJ", "JBSWY3DPEHPK3PXP01234567890", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX="],
)
def test_a_malformed_totp_secret_is_refused_at_creation(backbone: Backbone, secret: str) -> None:
    answer = backbone.login("admin").post(
        "/v1/admin/users",
        json={
            "username": f"id{uuid.uuid4().hex[:8]}",
            "display_name": "Bad Secret",
            "role": "nurse",
            "password": PASSWORD,
            "totp_secret": secret,
        },
    )

    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["totp_secret"]


def test_a_deactivated_users_token_stops_working_at_once(backbone: Backbone) -> None:
    username, user_id, _ = new_user(backbone)
    with backbone.client() as client:
        headers = bearer(token(client, username))
        assert client.get("/v1/me", headers=headers).status_code == 200

        deactivated = backbone.login("admin").post(
            f"/v1/admin/users/{user_id}/deactivate", json={"reason": "left the hospital"}
        )

        assert deactivated.status_code == 201, deactivated.text
        assert client.get("/v1/me", headers=headers).status_code == 401
        assert token(client, username).status_code == 401


def test_changing_your_password_ends_your_other_sessions(backbone: Backbone) -> None:
    username, _, _ = new_user(backbone)
    new_password = "a different long passphrase"
    with backbone.client() as client:
        here, elsewhere = bearer(token(client, username)), bearer(token(client, username))

        wrong = client.post(
            "/v1/me/password",
            json={"current_password": "not it at all", "new_password": new_password},
            headers=here,
        )
        changed = client.post(
            "/v1/me/password",
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=here,
        )

        assert wrong.status_code == 422 and changed.status_code == 201, changed.text
        assert client.get("/v1/me", headers=here).status_code == 200
        assert client.get("/v1/me", headers=elsewhere).status_code == 401
        assert token(client, username).status_code == 401
        assert token(client, username, new_password).status_code == 200


def test_an_admin_ends_every_session_of_a_user(backbone: Backbone) -> None:
    username, user_id, _ = new_user(backbone)
    with backbone.client() as client:
        headers = bearer(token(client, username))

        revoked = backbone.login("admin").post(
            f"/v1/admin/users/{user_id}/sessions/revoke", json={"reason": "stolen laptop"}
        )

        assert revoked.status_code == 201, revoked.text
        assert client.get("/v1/me", headers=headers).status_code == 401
        assert token(client, username).status_code == 200


def test_logout_ends_the_session(backbone: Backbone) -> None:
    username, _, _ = new_user(backbone)
    with backbone.client() as client:
        headers = bearer(token(client, username))
        assert client.post("/v1/auth/logout", headers=headers).status_code == 204
        assert client.get("/v1/me", headers=headers).status_code == 401


def test_spraying_passwords_from_one_address_answers_429_with_retry_after(
    backbone: Backbone,
) -> None:
    began = time.monotonic()
    with backbone.client() as client:
        answers = [
            client.post(
                "/v1/auth/token",
                data={"username": f"nobody{i}", "password": "spray spray spray"},
                headers=at("203.0.113.200"),
            )
            for i in range(31)
        ]
    assert [a.status_code for a in answers[:30]] == [401] * 30
    assert answers[30].status_code == 429
    assert answers[30].json()["type"].endswith("/rate-limited")
    assert 1 <= int(answers[30].headers["Retry-After"]) <= 15 * 60
    assert time.monotonic() - began < 120


def test_a_privileged_account_needs_a_second_admin_who_is_not_the_requester(
    backbone: Backbone,
) -> None:
    # given an admin creating a compliance account
    username = f"id{uuid.uuid4().hex[:8]}"
    body = {"username": username, "display_name": "New", "role": "compliance", "password": PASSWORD}
    admin = backbone.login("admin")
    created = admin.post("/v1/admin/users", json=body)
    assert created.status_code == 201 and created.json()["status"] == "pending_approval"
    account, secret = created.json()["id"], created.json()["totp_secret"]

    # then it cannot log in, the requester cannot approve it, a second admin can
    with backbone.client() as client:
        before = token(client, username, otp=pyotp.TOTP(secret).now())
    own = admin.post(f"/v1/admin/users/{account}/approve")
    approved = backbone.login(SECOND_ADMIN).post(f"/v1/admin/users/{account}/approve")
    with backbone.client() as client:
        after = token(client, username, otp=pyotp.TOTP(secret).now())

    assert before.status_code == 401
    assert own.status_code == 403 and "second administrator" in own.json()["detail"]
    assert approved.status_code == 201, approved.text
    assert after.status_code == 200, after.text
