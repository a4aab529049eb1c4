"""Kafka client backends: confluent-kafka (the default) and aiokafka, behind one interface."""

from fogverse.clients.choice import backend_for, client_name

__all__ = ["backend_for", "client_name"]
