"""Test doubles of the proprietary Hailo SDK surfaces (never reachable from the CLI)."""
