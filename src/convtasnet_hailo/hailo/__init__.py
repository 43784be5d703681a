"""Hailo-format stages and the plan builder: every Hailo-specific rewrite lives here."""
