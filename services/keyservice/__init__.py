"""The key service: payload keys for Kafka subscribers, scoped by principal, every fetch audited."""
