"""HTTP API blueprints (JSON). Each module owns one resource."""
