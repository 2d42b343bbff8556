"""The read side: projections consuming Kafka into PostgreSQL read tables."""
