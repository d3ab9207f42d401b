"""Reflex pages."""
