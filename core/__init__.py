"""Shared core of agentrec: settings, paths and user-facing errors."""
