"""What the FHIR endpoint serves: one ``Kind`` per resource type, read from the read tables.

A kind is data, not code paths: the SQL that yields one row per resource, the search
parameters that row supports, and the function that turns the row into the resource. The
search engine (``services.fhir.search``), ``$everything``, bulk export and the
CapabilityStatement all work from the same kinds, so what is listed is what is served.

Every kind's ``source`` is a ``SELECT`` giving at least these columns (the engine filters
and pages on them; ``to_resource`` may read any other column the query gives):

- ``id`` (uuid): the resource id; ``patient_id`` (uuid): whose record it belongs to;
- ``last_updated`` (timestamptz): ``meta.lastUpdated`` and ``_lastUpdated``;
- the columns its search parameters name (``Param.columns``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["token", "date", "string", "reference"]


@dataclass(frozen=True)
class Param:
    """A search parameter of a kind and the source columns it filters on.

    token: ``columns == (system_column, code_column)`` (system may be ``""``: no system
    column) or ``(code_column,)``; date: ``(column,)``, with prefixes eq/ne/lt/gt/le/ge;
    string: ``(column,)``, case-insensitive prefix match; reference: ``(column,)`` of uuids."""

    type: ParamType
    columns: tuple[str, ...]
    description: str = ""
    # reference: the resource type it points at (a ``patient_id`` Patient reference also
    # scopes the search to the records the caller may open).
    target: str = "Patient"

    @property
    def scopes_patients(self) -> bool:
        return self.type == "reference" and self.columns == ("patient_id",)


# Every kind filters by its patient (reference) and _lastUpdated: declared once here.
PATIENT = Param("reference", ("patient_id",), "the patient whose record it is")
LAST_UPDATED = Param("date", ("last_updated",), "when the resource last changed")


@dataclass(frozen=True)
class Kind:
    """One FHIR resource type served from the read tables."""

    name: str
    source: str
    to_resource: Callable[[Mapping[str, Any]], dict[str, Any]]
    params: Mapping[str, Param] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    # False for Patient: its search needs no patient parameter (it is the patient).
    patient_scoped: bool = True
