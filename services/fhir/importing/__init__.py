"""FHIR R4 import: Bundles and NDJSON files turned into the backbone's typed commands."""
