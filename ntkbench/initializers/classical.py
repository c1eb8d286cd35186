"""Classical initializers (placeholder until written)."""
