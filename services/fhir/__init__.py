"""FHIR R4: the backbone's read tables and store as FHIR resources, and FHIR input as the
same typed commands as every other entry point. No FastAPI here: the routes live in
``services.api.fhir`` and the CLI in ``services.cli``."""
