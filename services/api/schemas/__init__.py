"""Request and response bodies of the API: not events, not table rows."""
