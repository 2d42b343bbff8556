"""Small pieces of the infrastructure control that must not fail by chance."""

from __future__ import annotations

from services.local_stack.kafka import new_cluster_id
from services.local_stack.postgres import redact_url


def test_cluster_ids_never_start_with_a_dash_that_the_storage_tool_reads_as_an_option() -> None:
    ids = [new_cluster_id() for _ in range(5000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)


def test_status_output_never_shows_the_database_password() -> None:
    assert redact_url("postgresql://backbone:s3cret@127.0.0.1:55432/backbone") == (
        "postgresql://backbone:***@127.0.0.1:55432/backbone"
    )
