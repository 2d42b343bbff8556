"""Settings of the HL7 v2 translations, read from ``BACKBONE_HL7_*`` variables."""

from __future__ import annotations

from datetime import tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TranslateSettings(BaseSettings):
    """Whose medical record numbers are the backbone's, and the senders' local time zone."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_HL7_", extra="ignore")

    # The assigning authorities (PID-3.4) whose identifiers are our MRNs, comma separated;
    # empty: an identifier of any authority is an MRN.
    mrn_authorities: str = ""
    # The zone of HL7 times sent without an offset (IANA name).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name") from None
        return value

    @property
    def authorities(self) -> frozenset[str]:
        return frozenset(a.strip().upper() for a in self.mrn_authorities.split(",") if a.strip())

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_translate_settings() -> TranslateSettings:
    """The process-wide translation settings, read once."""
    return TranslateSettings()
