"""Runs execute in worker processes (spawned, one per run); the web process only schedules them
and relays their events (persist first, then emit)."""
