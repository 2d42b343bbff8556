"""`backbone up` as `make run` uses it: the relay runs in the background and publishes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from events.commands.patients import RegisterPatient
from events.settings import get_store_settings
from events.store.keys import create_master_key
from projections.chart import fetch_chart
from projections.engine.database import read_pool
from projections.settings import get_projection_settings
from services.bootstrap import build_store
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from services.supervisor import Supervisor
from tests.cli import backbone
from tests.integration.contract_reader import ContractReader
from tests.unit.conftest import ctx

pytestmark = pytest.mark.integration


@pytest.fixture
def running(stack: LocalStack, settings: ServiceSettings) -> Iterator[Supervisor]:
    create_master_key(get_store_settings().master_key_file)
    supervisor = Supervisor(settings)
    yield supervisor
    supervisor.stop_all()


def test_backbone_up_starts_the_relay_which_publishes_what_the_store_records(
    running: Supervisor, settings: ServiceSettings
) -> None:
    reader = ContractReader(settings)
    up = backbone("up")
    assert up.returncode == 0, up.stderr
    status = backbone("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    components = {c["name"]: c for c in json.loads(status.stdout)}
    assert set(components) >= {"postgresql", "kafka", *(p.name for p in running.processes)}
    assert components["relay"]["up"] and "lag" in components["relay"]

    store = build_store()
    patient_id = store.register_patient(
        ctx(),
        RegisterPatient(
            mrn=f"E2E-{uuid.uuid4().hex[:12]}",
            family_name="Endtoend",
            given_names=("Eve",),
            birth_date=date(1980, 5, 5),
            sex="female",
        ),
    ).id
    arrived = reader.poll_until(
        lambda r: len(r.envelopes) >= 1, 60, lambda e: e["patient_id"] == str(patient_id)
    )
    reader.close()
    store.close()
    assert arrived

    pool = read_pool(get_projection_settings())
    try:
        with pool.connection() as conn:
            charted = wait_until(lambda: fetch_chart(conn, patient_id) is not None, 60, 0.2)
    finally:
        pool.close()
    assert charted, "the projections process never put the patient in the chart"
