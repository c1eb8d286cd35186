"""Synthetic regression tasks (placeholder until written)."""
