"""Packwork: a low-code CRM platform. Packs in, tables, forms, API and rules out."""

__version__ = "0.1.0"
