"""Run folders and the TSV/JSON files the runbook's users read."""
