"""IoT sensor readings with anomaly detection."""
