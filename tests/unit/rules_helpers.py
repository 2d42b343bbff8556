"""Codes shared by the clinical rules tests: the LOINC codes of the analytes they flag."""

from __future__ import annotations

POTASSIUM = "2823-3"
SODIUM = "2951-2"
GLUCOSE = "2345-7"
CALCIUM = "17861-6"
HEMOGLOBIN = "718-7"
PLATELETS = "777-3"
CREATININE = "2160-0"
INR = "6301-6"
LACTATE = "2524-7"
AST = "1920-8"
UNKNOWN_LOINC = "99999-9"
