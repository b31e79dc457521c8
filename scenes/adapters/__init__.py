"""Dataset adapters: disk formats (read through the official devkits) -> scene records."""
