"""Readers and writers of the formats people already use."""
