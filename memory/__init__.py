"""Short-term memory (Redis) and long-term memory (Chroma)."""
