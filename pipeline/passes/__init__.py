"""Relax passes of our own, one per file, each with its own test."""
