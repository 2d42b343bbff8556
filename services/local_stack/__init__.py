"""Start, stop and check the local PostgreSQL cluster and Kafka broker."""
