"""Data contracts: infer, edit as YAML, validate data against them, store the reports."""
