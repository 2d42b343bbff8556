"""Reading a message's header and writing its ACK (original mode).

The header (MSH) is read by hand, not through ``hl7.parse``: an ACK must echo MSH-10 and
swap sender and receiver even for a message the parser gives up on. The ACK reuses the
message's separators, so that echoed fields stay valid as they are; our own text (the
ERR-8 reason) is escaped. ``AE`` and ``AR`` carry an ERR segment: ERR-2 the location
(``PID^1^3``), ERR-3 the code of HL7 table 0357, ERR-4 severity ``E``, ERR-8 the reason;
versions before 2.5, which have no ERR-2..8, also get ERR-1 and MSA-3.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from services.hl7.contract import AckCode, Refusal, Sender

DEFAULT_VERSION = "2.5.1"
DEFAULT_ENCODING = "^~\\&"
MAX_CONTROL_ID = 64
# HL7 table 0357 (message error condition codes), the ones the listener answers.
ERROR_CODES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
_LOCATION = re.compile(
    r"^(?P<segment>[A-Z][A-Z0-9]{2})(?:[\[(](?P<sequence>\d+)[\])])?"
    r"(?:[-.](?P<field>\d+)(?:\.(?P<component>\d+)(?:\.(?P<sub>\d+))?)?)?$"
)
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class Header:
    """What the listener needs from a message's MSH segment (raw field text)."""

    separator: str = "|"
    encoding: str = DEFAULT_ENCODING
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_code: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""

    @property
    def sender(self) -> Sender:
        return Sender(self.sending_application, self.sending_facility)

    @property
    def message_type(self) -> str:
        """``ADT^A01`` (always with ``^``, whatever the message's component separator)."""
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code

    @property
    def component(self) -> str:
        return self.encoding[0] if self.encoding else "^"


def read_header(text: str) -> Header | None:
    """The MSH of a message whose segments are separated by CR; None when the text does not
    start with an MSH segment (nothing of it can be echoed)."""
    if not text.startswith("MSH") or len(text) < 8 or text[3].isalnum() or text[3] in "\r\n":
        return None
    separator = text[3]
    fields = text.split("\r", 1)[0].split(separator)
    fields[0] = separator  # MSH-1 is the separator itself: fields[n - 1] is MSH-n

    def msh(n: int) -> str:
        return fields[n - 1].strip() if len(fields) >= n else ""

    encoding = msh(2) or DEFAULT_ENCODING
    component = encoding[0]
    kind = msh(9).split(component)
    return Header(
        separator=separator,
        encoding=encoding,
        sending_application=msh(3),
        sending_facility=msh(4),
        receiving_application=msh(5),
        receiving_facility=msh(6),
        message_code=kind[0].strip(),
        trigger=kind[1].strip() if len(kind) > 1 else "",
        control_id=msh(10),
        processing_id=msh(11).split(component)[0],
        version=msh(12).split(component)[0],
    )


def check_header(header: Header | None) -> Header:
    """The header, or the ``AR`` refusal of a message the listener cannot take."""
    if header is None:
        raise Refusal("AR", "MSH-1", "not an HL7 v2 message: it must start with an MSH segment")
    if not header.control_id:
        raise Refusal("AR", "MSH-10", "MSH-10 (message control id) is required", error_code="101")
    if len(header.control_id) > MAX_CONTROL_ID or not _PRINTABLE.match(header.control_id):
        raise Refusal("AR", "MSH-10", "MSH-10 (message control id) is not a valid identifier")
    if not header.sending_application:
        raise Refusal("AR", "MSH-3", "MSH-3 (sending application) is required", error_code="101")
    if not header.message_code or not header.trigger:
        raise Refusal(
            "AR", "MSH-9", "MSH-9 (message type and trigger event) is required", error_code="101"
        )
    if not header.version.startswith("2."):
        raise Refusal("AR", "MSH-12", f"HL7 version {header.version or '(none)'} is not v2.x")
    return header


def error_code(refusal: Refusal) -> str:
    """The ERR-3 code of a refusal: its own, or the one its code and location suggest."""
    if refusal.error_code in ERROR_CODES:
        return refusal.error_code
    location = refusal.location.upper()
    if refusal.code == "AR":
        if location.startswith("MSH-9"):
            return "200"
        if location.startswith("MSH-12"):
            return "203"
        if location.startswith("MSH-11"):
            return "202"
        return "101" if "required" in refusal.reason else "102"
    if location.startswith("PID-3") and refusal.patient_id is None:
        return "204"
    return "207"


def error_location(location: str, component: str = "^") -> str:
    """``PID-3`` as an ERL (ERR-2): ``PID^1^3``; ``OBX[2]-5.1`` as ``OBX^2^5^1^1``."""
    found = _LOCATION.match(location.strip().upper())
    if found is None:
        return ""
    parts = [found["segment"], found["sequence"] or "1"]
    if found["field"]:
        parts.append(found["field"])
        if found["component"]:
            parts += ["1", found["component"]]
            if found["sub"]:
                parts.append(found["sub"])
    return component.join(parts)


def escape(text: str, header: Header) -> str:
    """Our own text as field content: separators and the escape character escaped, line
    breaks flattened."""
    encoding = (header.encoding + DEFAULT_ENCODING[len(header.encoding) :])[:4]
    component, repetition, esc, sub = encoding[0], encoding[1], encoding[2], encoding[3]
    replaced = text.replace(esc, f"{esc}E{esc}")
    for char, name in (
        (header.separator, "F"),
        (component, "S"),
        (repetition, "R"),
        (sub, "T"),
    ):
        replaced = replaced.replace(char, f"{esc}{name}{esc}")
    return " ".join(replaced.split())


def _before_2_5(version: str) -> bool:
    numbers = re.findall(r"\d+", version)
    return [int(n) for n in numbers[:2]] < [2, 5] if numbers else False


def new_control_id() -> str:
    """The ACK's own MSH-10: 20 characters (ST length in 2.3 to 2.5.1)."""
    return "ACK" + secrets.token_hex(9)[:17].upper()


def build_ack(
    header: Header | None,
    code: AckCode,
    now: datetime,
    refusal: Refusal | None = None,
    *,
    application: str = "BACKBONE",
    control_id: str | None = None,
) -> bytes:
    """The ACK of a message (segments separated by CR, ending with one), unframed."""
    head = header or Header()
    sep, comp = head.separator, head.component
    version = head.version or DEFAULT_VERSION
    kind = comp.join(("ACK", head.trigger, "ACK")) if head.trigger else "ACK"
    msh = sep.join(
        (
            "MSH",
            head.encoding,
            head.receiving_application or application,
            head.receiving_facility,
            head.sending_application,
            head.sending_facility,
            now.strftime("%Y%m%d%H%M%S"),
            "",
            kind,
            control_id or new_control_id(),
            head.processing_id or "P",
            version,
        )
    )
    msa = ["MSA", code, head.control_id]
    segments = [msh]
    if refusal is not None:
        reason = escape(refusal.reason, head)
        number = error_code(refusal)
        location = error_location(refusal.location, comp)
        sub = head.encoding[3] if len(head.encoding) > 3 else "&"
        cwe = comp.join((number, ERROR_CODES[number], "HL70357"))
        eld = ""
        if _before_2_5(version):
            msa.append(reason)
            position = comp.join(location.split(comp)[:3]) if location else comp * 2
            eld = comp.join((position, sub.join((number, ERROR_CODES[number], "HL70357"))))
        segments += [sep.join(msa), sep.join(("ERR", eld, location, cwe, "E", "", "", "", reason))]
    else:
        segments.append(sep.join(msa))
    return ("\r".join(segments) + "\r").encode("utf-8")


@dataclass(frozen=True)
class ReadAck:
    """What a client reads from an ACK: MSA-1, MSA-2 and the reason (ERR-8 or MSA-3)."""

    code: str
    control_id: str
    reason: str


def read_ack(text: str) -> ReadAck | None:
    """The MSA (and ERR) of an ACK; None when it is not one."""
    header = read_header(text)
    if header is None:
        return None
    code, control_id, reason = "", "", ""
    for segment in text.split("\r"):
        fields = segment.split(header.separator)
        if fields[0] == "MSA":
            code = fields[1] if len(fields) > 1 else ""
            control_id = fields[2] if len(fields) > 2 else ""
            reason = reason or (fields[3] if len(fields) > 3 else "")
        elif fields[0] == "ERR" and len(fields) > 8 and fields[8]:
            reason = fields[8]
    return ReadAck(code, control_id, reason) if code else None
