"""The one write API of the backbone: the store core with every clinical area's commands.

Entry points (HTTP routes, HL7 v2, FHIR import, the CLI, bulk imports) build the typed
inputs of ``events.commands`` and call these methods; nothing else writes events.
"""

from __future__ import annotations

from events.commands.access import AccessCommands
from events.commands.encounters import EncounterCommands
from events.commands.medications import MedicationCommands
from events.commands.merges import MergeCommands
from events.commands.observations import ObservationCommands
from events.commands.orders import OrderCommands
from events.commands.patients import PatientCommands
from events.commands.users import UserCommands
from events.store.application import StoreCore


class ClinicalStore(
    PatientCommands,
    MergeCommands,
    OrderCommands,
    MedicationCommands,
    ObservationCommands,
    EncounterCommands,
    AccessCommands,
    UserCommands,
    StoreCore,
):
    """The event-sourced application every write goes through."""
