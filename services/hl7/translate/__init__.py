"""HL7 v2 messages as the backbone's typed commands: the listener's translator.

``translate`` reads one parsed message (python-hl7) and answers a ``Translation`` whose
``apply`` runs the same commands the REST routes build. Reading is pure: nothing is looked
up in the store until ``apply``, which the listener runs after the earlier messages of the
same patient (``patient_key``), so that an A04 registering a patient is applied before the
ORM that follows it. Supported: ADT^A01/A02/A03/A04/A08/A40, ORM^O01, OML^O21, ORU^R01 and
RDE^O11 (MSH-9 with or without its message structure component) of versions 2.3 to 2.5.1
(MSH-12). Anything else, and a message missing a required segment or field, is refused
``AR``; what a clinical rule refuses, an unknown patient or clinician, ``AE``.
"""

from __future__ import annotations

from datetime import UTC, timezone, tzinfo

import hl7  # type: ignore[import-untyped, unused-ignore]

from events.application import ClinicalStore
from services.hl7.contract import Refusal, Sender, Translation
from services.hl7.translate.adt import TRIGGERS, translate_adt
from services.hl7.translate.fields import Message, Segment, timestamp
from services.hl7.translate.orders import translate_orders
from services.hl7.translate.pharmacy import translate_prescriptions
from services.hl7.translate.results import translate_results
from services.hl7.translate.settings import TranslateSettings, get_translate_settings
from services.hl7.translate.steps import Inbound

__all__ = ["SUPPORTED", "VERSIONS", "TranslateSettings", "translate"]

VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1"})
SUPPORTED = frozenset({f"ADT^{t}" for t in TRIGGERS} | {"ORM^O01", "OML^O21", "ORU^R01", "RDE^O11"})


def sender_zone(msh: Segment, settings: TranslateSettings) -> tzinfo:
    """The zone of the message's times sent without an offset: MSH-7's offset when it has
    one (HL7: the sender's zone is the message's default), else the configured zone."""
    sent = timestamp(msh, 7, UTC)
    text = msh.get(7)
    if sent is not None and ("+" in text or "-" in text):
        offset = hl7.parse_datetime(text).utcoffset()
        if offset is not None:
            return timezone(offset)
    return settings.zone


def translate(
    message: hl7.Message,
    sender: Sender,
    store: ClinicalStore,  # noqa: ARG001 - the listener's contract; only apply reads it
    *,
    settings: TranslateSettings | None = None,
) -> Translation:
    """The commands of one parsed message (``hl7.Message``), or ``Refusal``."""
    chosen = settings or get_translate_settings()
    parsed = Message(message)
    msh = parsed.require("MSH")
    kind = msh.require(9, 1, what="the message type (MSH-9)").upper()
    trigger = msh.get(9, 2).upper()
    message_type = f"{kind}^{trigger}"
    if message_type not in SUPPORTED:
        raise Refusal("AR", "MSH-9", f"message type {message_type} is not supported")
    version = msh.require(12, what="the version (MSH-12)")
    if version not in VERSIONS:
        raise Refusal("AR", "MSH-12", f"version {version} is not supported (2.3 to 2.5.1)")
    control_id = msh.require(10, what="the message control id (MSH-10)")
    inbound = Inbound(
        message_type, control_id, sender, chosen.authorities, sender_zone(msh, chosen)
    )
    if kind == "ADT":
        return translate_adt(parsed, trigger, inbound)
    if kind in ("ORM", "OML"):
        return translate_orders(parsed, inbound)
    if kind == "ORU":
        return translate_results(parsed, inbound)
    return translate_prescriptions(parsed, inbound)
