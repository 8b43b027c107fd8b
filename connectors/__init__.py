"""Connectors: one module per platform. They know their platform and nothing about our database."""
