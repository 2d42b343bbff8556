"""``backbone up`` runs BACKBONE_PROJECTION_INSTANCES projection processes; ``down`` and
``status`` see every instance an earlier ``up`` started, even with fewer asked for now."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import ServiceSettings
from services.supervisor import PROJECTIONS, Supervisor


def names(data_dir: Path, instances: int) -> list[str]:
    settings = ServiceSettings(data_dir=data_dir, projection_instances=instances)
    return [p.name for p in Supervisor(settings).processes]


def test_one_instance_by_default(tmp_path: Path) -> None:
    listed = names(tmp_path, 1)
    assert listed.count("projections") == 1
    assert not [n for n in listed if n.startswith("projections-")]


def test_two_instances_share_the_command(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path, projection_instances=2)
    listed = {p.name: p for p in Supervisor(settings).processes}
    assert listed["projections"].argv == listed["projections-2"].argv == PROJECTIONS.argv
    assert "projections-3" not in listed


def test_instances_left_by_an_earlier_up_are_still_listed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "projections-3.pid").write_text("1")
    assert {"projections", "projections-2", "projections-3"} <= set(names(tmp_path, 1))


def test_the_count_is_bounded() -> None:
    with pytest.raises(ValueError):
        ServiceSettings(projection_instances=0)
