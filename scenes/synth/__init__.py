"""The synthetic city: a deterministic simulator of urban driving, written in the real dataset formats."""
