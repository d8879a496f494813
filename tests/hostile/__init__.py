"""A hostile-request corpus and raw-HTTP helpers (issue #13: no 500 for a client's mistake)."""
