"""Mechanisms shared by every app: error format, health, replica probing, metrics, demo data."""
