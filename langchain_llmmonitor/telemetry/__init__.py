"""What the monitor reports about what it sees: the Prometheus metric families and the structlog helpers."""
