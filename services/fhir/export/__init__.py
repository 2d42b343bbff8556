"""FHIR Bulk Data export (HL7 Bulk Data Access IG v2): kick-off parameters, jobs, files."""
