"""FHIR Bulk Data export (HL7 Bulk Data Access IG v2): kick-off parameters (``params``), the
job table and its states (``jobs``), the NDJSON files and the background run (``writer``),
and the completion manifest (``manifest``)."""
