"""Pure retail rules: the canonical model, order states, routing, distances, the errors they raise (no SQL, no I/O)."""
