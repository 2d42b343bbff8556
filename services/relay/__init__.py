"""The outbox relay: every stored event onto its area's Kafka topic, in store order."""
