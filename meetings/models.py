"""Every eCabinet table module, for storage.models."""
