"""Cross-cutting basics: settings, ids, errors, hashing, time, name validation."""
